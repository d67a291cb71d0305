//! Who may do what over HTTP. What carries values (apps' specs with their env and scripts,
//! history, logs) needs the token on every address; bound to loopback, the page itself,
//! `/metrics` and `/api/samples` (figures, no values) are open; bound to anything else, every
//! request needs it. A browser gets the token once in the URL (`/?token=...`, as `pmx
//! dashboard` prints it) and keeps it in a cookie; actions must send it in a header, which
//! another site's page cannot do (no cross-site request forgery). On loopback the Host header
//! must name loopback too, so a site that rebinds its name to 127.0.0.1 cannot read the API.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{Web, refuse};

const COOKIE: &str = "pmx_token";

/// The token in `path`, created (random, mode 0600) when there is none.
pub fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let token = text.trim();
        if token.len() >= 32 && token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(token.to_string());
        }
    }
    let mut random = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    pmx_core::private::replace(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// The rules for one listener.
pub struct Guard {
    token: String,
    loopback: bool,
    port: u16,
}

/// What a request may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed by a token in the URL: the answer sets the cookie.
    AllowAndRemember,
    Refuse(StatusCode, &'static str),
}

/// Where a request carried a token.
#[derive(Debug, Default)]
pub struct Presented<'a> {
    pub host: Option<&'a str>,
    pub header: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub query: Option<&'a str>,
}

impl Guard {
    pub fn new(local: SocketAddr, token: String) -> Self {
        Guard {
            token,
            loopback: local.ip().is_loopback(),
            port: local.port(),
        }
    }

    /// Whether `path` holds no values: served on loopback without the token.
    fn is_open(path: &str) -> bool {
        matches!(
            path,
            "/" | "/app.js" | "/style.css" | "/metrics" | "/api/samples"
        )
    }

    pub fn judge(&self, method: &Method, path: &str, p: &Presented) -> Verdict {
        if self.loopback && p.host.is_some_and(|h| !self.is_loopback_host(h)) {
            return Verdict::Refuse(
                StatusCode::FORBIDDEN,
                "the Host header must name 127.0.0.1 or localhost",
            );
        }
        let valid = |t: Option<&str>| t.is_some_and(|t| same(t, &self.token));
        if *method == Method::GET || *method == Method::HEAD {
            if p.query.is_some() {
                return if valid(p.query) {
                    Verdict::AllowAndRemember
                } else {
                    Verdict::Refuse(StatusCode::UNAUTHORIZED, "wrong token")
                };
            }
            if (self.loopback && Self::is_open(path)) || valid(p.header) || valid(p.cookie) {
                return Verdict::Allow;
            }
            return Verdict::Refuse(
                StatusCode::UNAUTHORIZED,
                if self.loopback {
                    "apps, history and logs need the dashboard token: open the URL `pmx dashboard` prints"
                } else {
                    "this listener is reachable from other machines: every request needs the token (`pmx dashboard --token` prints it)"
                },
            );
        }
        if valid(p.header) {
            Verdict::Allow
        } else if valid(p.cookie) {
            Verdict::Refuse(
                StatusCode::UNAUTHORIZED,
                "actions need the token in the Authorization header, not only in a cookie",
            )
        } else {
            Verdict::Refuse(
                StatusCode::UNAUTHORIZED,
                "actions need the dashboard token (`pmx dashboard --token` prints it)",
            )
        }
    }

    fn is_loopback_host(&self, host: &str) -> bool {
        // Checked at every request: no allocation.
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.parse() == Ok(self.port) => name,
            _ => host,
        };
        matches!(name, "127.0.0.1" | "localhost" | "[::1]")
    }
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

fn presented<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Presented<'a> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let header = text(header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| text("x-pmx-token"));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='));
    let query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(|t| t.trim())
    });
    Presented {
        host: text(header::HOST.as_str()),
        header: header.map(str::trim),
        cookie,
        query,
    }
}

/// The middleware in front of every route.
pub async fn check(State(web): State<Web>, request: Request, next: Next) -> Response {
    let verdict = {
        let p = presented(request.headers(), request.uri().query());
        web.guard.judge(request.method(), request.uri().path(), &p)
    };
    match verdict {
        Verdict::Allow => next.run(request).await,
        Verdict::AllowAndRemember => {
            let mut response = next.run(request).await;
            let cookie = format!("{COOKIE}={}; Path=/; SameSite=Strict", web.guard.token);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Verdict::Refuse(status, message) => refuse(status, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn guard(addr: &str) -> Guard {
        Guard::new(addr.parse().unwrap(), TOKEN.into())
    }

    /// The status a verdict refuses with; `None` when it allows.
    fn refusal(v: Verdict) -> Option<StatusCode> {
        match v {
            Verdict::Refuse(status, _) => Some(status),
            _ => None,
        }
    }

    const UNAUTHORIZED: Option<StatusCode> = Some(StatusCode::UNAUTHORIZED);

    fn with(header: Option<&'static str>, cookie: Option<&'static str>) -> Presented<'static> {
        Presented {
            host: Some("127.0.0.1:9615"),
            header,
            cookie,
            query: None,
        }
    }

    #[test]
    fn loopback_serves_only_figures_without_the_token_and_acts_only_with_it_in_a_header() {
        let g = guard("127.0.0.1:9615");
        for open in ["/", "/metrics", "/api/samples", "/app.js"] {
            assert_eq!(
                g.judge(&Method::GET, open, &with(None, None)),
                Verdict::Allow
            );
        }
        for secret in [
            "/api/apps",
            "/api/apps/x",
            "/api/apps/x/history",
            "/api/apps/x/logs",
        ] {
            assert_eq!(
                refusal(g.judge(&Method::GET, secret, &with(None, None))),
                UNAUTHORIZED,
                "{secret}"
            );
            assert_eq!(
                g.judge(&Method::GET, secret, &with(None, Some(TOKEN))),
                Verdict::Allow
            );
        }
        assert_eq!(
            refusal(g.judge(&Method::POST, "/api/apps/x/stop", &with(None, None))),
            UNAUTHORIZED
        );
        assert_eq!(
            refusal(g.judge(
                &Method::POST,
                "/api/apps/x/stop",
                &with(Some("wrong"), None)
            )),
            UNAUTHORIZED
        );
        assert_eq!(
            refusal(g.judge(&Method::POST, "/api/apps/x/stop", &with(None, Some(TOKEN)))),
            UNAUTHORIZED
        );
        assert_eq!(
            g.judge(&Method::POST, "/api/apps/x/stop", &with(Some(TOKEN), None)),
            Verdict::Allow
        );
    }

    #[test]
    fn off_loopback_every_request_needs_the_token() {
        let g = guard("0.0.0.0:9615");
        let mut p = with(None, None);
        p.host = Some("10.1.2.3:9615");
        assert_eq!(
            refusal(g.judge(&Method::GET, "/api/apps", &p)),
            UNAUTHORIZED
        );
        p.cookie = Some(TOKEN);
        assert_eq!(g.judge(&Method::GET, "/api/apps", &p), Verdict::Allow);
        p.cookie = None;
        p.query = Some(TOKEN);
        assert_eq!(
            g.judge(&Method::GET, "/api/apps", &p),
            Verdict::AllowAndRemember
        );
        p.query = Some("nope");
        assert_eq!(
            refusal(g.judge(&Method::GET, "/api/apps", &p)),
            UNAUTHORIZED
        );
    }

    #[test]
    fn a_rebound_host_name_is_refused_on_loopback() {
        let g = guard("127.0.0.1:9615");
        let mut p = with(None, None);
        p.host = Some("evil.example:9615");
        assert_eq!(
            refusal(g.judge(&Method::GET, "/metrics", &p)),
            Some(StatusCode::FORBIDDEN)
        );
        p.host = Some("localhost:9615");
        assert_eq!(g.judge(&Method::GET, "/metrics", &p), Verdict::Allow);
    }

    #[test]
    fn the_token_is_read_from_a_bearer_header_a_cookie_or_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        headers.insert(header::COOKIE, "a=b; pmx_token=xyz".parse().unwrap());
        let p = presented(&headers, Some("x=1&token=q"));
        assert_eq!(
            (p.header, p.cookie, p.query),
            (Some("abc"), Some("xyz"), Some("q"))
        );
    }

    #[test]
    fn a_token_file_is_created_private_and_then_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dashboard.token");
        let first = load_or_create_token(&path).unwrap();
        assert_eq!(first.len(), 48);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_token(&path).unwrap(), first);
    }
}
