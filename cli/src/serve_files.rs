//! The app `pmx serve` starts: a static file server configured by PM2's `PM2_SERVE_*`
//! variables (`PMX_SERVE_*` read first), so `pm2 serve` command lines and ecosystem files
//! that say `script: "serve"` work. It runs under the daemon like any app: logs, restarts,
//! `stop` and `delete` are the daemon's.
//!
//! Which file answers a path, as PM2's server: `/` is the homepage; a missing file is, with
//! `spa`, the file of that name at the top (`/a/b/other.html` → `/other.html`), else the
//! homepage; without `spa`, `404.html` (status 404). Nothing outside the root is served.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use base64::Engine;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::error::CliError;

/// The server's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub root: PathBuf,
    pub port: u16,
    pub spa: bool,
    pub homepage: String,
    /// `user:password`, when requests must carry it.
    pub basic_auth: Option<String>,
}

fn var(name: &str) -> Option<String> {
    [format!("PMX_{name}"), format!("PM2_{name}")]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.is_empty()))
}

impl Settings {
    pub fn from_env() -> Result<Self, CliError> {
        let root = PathBuf::from(var("SERVE_PATH").unwrap_or_else(|| ".".into()));
        let root = std::path::absolute(&root)
            .map_err(|e| CliError::Usage(format!("serve path {}: {e}", root.display())))?;
        let port = match var("SERVE_PORT") {
            None => 8080,
            Some(p) => p
                .parse()
                .map_err(|_| CliError::Usage(format!("PM2_SERVE_PORT: not a port: {p:?}")))?,
        };
        let basic_auth = (var("SERVE_BASIC_AUTH").as_deref() == Some("true")).then(|| {
            let user = var("SERVE_BASIC_AUTH_USERNAME").unwrap_or_default();
            let password = var("SERVE_BASIC_AUTH_PASSWORD").unwrap_or_default();
            format!("{user}:{password}")
        });
        Ok(Settings {
            root,
            port,
            spa: var("SERVE_SPA").as_deref() == Some("true"),
            homepage: var("SERVE_HOMEPAGE").unwrap_or_else(|| "/index.html".into()),
            basic_auth,
        })
    }
}

/// What answers a request path.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    File(PathBuf),
    /// `404.html` (when there is one) with status 404.
    NotFound(Option<PathBuf>),
    Forbidden,
}

/// The root-relative file a URL path names; `None` when it climbs out of the root.
fn inside(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for component in Path::new(url_path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(path)
}

pub fn resolve(s: &Settings, url_path: &str, is_file: impl Fn(&Path) -> bool) -> Answer {
    let wants_home = url_path.is_empty() || url_path == "/";
    let asked = if wants_home {
        s.homepage.as_str()
    } else {
        url_path
    };
    let Some(file) = inside(&s.root, asked) else {
        return Answer::Forbidden;
    };
    if is_file(&file) {
        return Answer::File(file);
    }
    if s.spa && !wants_home {
        let name = Path::new(asked)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        if let Some(top) = name
            .and_then(|n| inside(&s.root, &n))
            .filter(|f| is_file(f))
        {
            return Answer::File(top);
        }
        if let Some(home) = inside(&s.root, &s.homepage).filter(|f| is_file(f)) {
            return Answer::File(home);
        }
    }
    let custom = s.root.join("404.html");
    Answer::NotFound(is_file(&custom).then_some(custom))
}

/// Whether a request carries the credentials (when some are required).
fn authorized(s: &Settings, request: &Request<Body>) -> bool {
    let Some(expected) = &s.basic_auth else {
        return true;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        });
    given.as_deref() == Some(expected.as_bytes())
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

async fn answer(s: &Settings, request: Request<Body>) -> Response<Body> {
    if !authorized(s, &request) {
        let mut response = text(StatusCode::UNAUTHORIZED, "401 Unauthorized");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"pmx serve\""),
        );
        return response;
    }
    let path = request.uri().path().to_string();
    let decoded = percent_decode(&path);
    let (file, status) = match resolve(s, &decoded, |p| p.is_file()) {
        Answer::File(file) => (file, StatusCode::OK),
        Answer::NotFound(Some(page)) => (page, StatusCode::NOT_FOUND),
        Answer::NotFound(None) => return text(StatusCode::NOT_FOUND, "404 Not Found"),
        Answer::Forbidden => return text(StatusCode::FORBIDDEN, "403 Forbidden"),
    };
    match ServeFile::new(file).oneshot(request).await {
        Ok(response) => {
            let mut response = response.map(Body::new);
            if status != StatusCode::OK {
                *response.status_mut() = status;
            }
            response
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 cannot read the file",
        ),
    }
}

/// `%20` and the like in a URL path, decoded (invalid sequences are kept as they are).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the server until the daemon stops it.
pub fn run() -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([0, 0, 0, 0], settings.port));
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            CliError::Failed(format!("cannot listen on port {}: {e}", settings.port))
        })?;
        println!(
            "serving {} on port {}{}",
            settings.root.display(),
            settings.port,
            if settings.spa {
                " (single-page app)"
            } else {
                ""
            }
        );
        tell_the_daemon();
        let settings = std::sync::Arc::new(settings);
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let settings = settings.clone();
            async move { answer(&settings, request).await }
        });
        axum::serve(listener, app)
            .await
            .map_err(|e| CliError::Failed(format!("the server failed: {e}")))
    })
}

/// Says on the channel the daemon gave (`PMX_CHANNEL_FD`) that the server listens, and, as
/// PM2's agent says for its own `serve` (a Node app), the app's name as its module: `serve`
/// apps are ready once they listen, and `jlist` shows them as PM2 does.
fn tell_the_daemon() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var("PMX_CHANNEL_FD")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|&fd| fd > 2)
    else {
        return;
    };
    // SAFETY: only asks whether the number is open; nothing is read or closed through it.
    let open = rustix::io::fcntl_getfd(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) });
    if open.is_err() {
        return;
    }
    // SAFETY: the daemon opened this descriptor for this process and named it; it is open
    // (checked above) and nothing else here uses it.
    let mut channel = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    let name = std::env::var("PMX_NAME").unwrap_or_default();
    let options = serde_json::json!({
        "type": "axm:option:configuration",
        "data": { "module_name": name },
    });
    let _ = write!(channel, "READY=1\nAXM {options}\n");
    // Kept open for the server's life: a closed channel reads as a process that stopped talking.
    std::mem::forget(channel);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(spa: bool) -> Settings {
        Settings {
            root: PathBuf::from("/site"),
            port: 8080,
            spa,
            homepage: "/index.html".into(),
            basic_auth: None,
        }
    }

    fn files(p: &Path) -> bool {
        [
            "/site/index.html",
            "/site/other.html",
            "/site/404.html",
            "/site/a/b.css",
        ]
        .contains(&p.to_str().unwrap_or_default())
    }

    #[test]
    fn paths_answer_as_pm2s_server_answers_them() {
        let file = |p: &str| Answer::File(PathBuf::from(p));
        let plain = settings(false);
        assert_eq!(resolve(&plain, "/", files), file("/site/index.html"));
        assert_eq!(resolve(&plain, "/a/b.css", files), file("/site/a/b.css"));
        assert_eq!(
            resolve(&plain, "/nope.html", files),
            Answer::NotFound(Some(PathBuf::from("/site/404.html")))
        );
        assert_eq!(resolve(&plain, "/../etc/passwd", files), Answer::Forbidden);
        let spa = settings(true);
        assert_eq!(
            resolve(&spa, "/x/y/other.html", files),
            file("/site/other.html")
        );
        assert_eq!(resolve(&spa, "/x/y/route", files), file("/site/index.html"));
    }

    #[test]
    fn percent_escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(percent_decode("/a%20b/%2e%2e/%zz"), "/a b/../%zz");
    }
}
