//! The daemon's HTTP listener (`pmx daemon --metrics ADDR`): Prometheus `/metrics`, a small
//! JSON API for scripts and the dashboard, and the dashboard itself (embedded, no CDN). It
//! asks the `Daemon` actor like the socket server does; it never touches apps itself.

mod api;
mod auth;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use pmx_core::protocol::{Failure, FailureKind, Request, Response};
use pmx_storage::Journal;

use crate::daemon::{Daemon, Handle};
pub use auth::load_or_create_token;

/// What the handlers share.
#[derive(Clone)]
struct Web {
    daemon: Addr<Daemon>,
    journal: Arc<dyn Journal>,
    guard: Arc<auth::Guard>,
    /// The daemon's user: requests over HTTP act as it.
    uid: u32,
    rate: metrics::EventRate,
}

/// Binds the listener before the daemon starts, so a bad address fails `pmx daemon` at once.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves until the daemon exits.
pub async fn serve(
    listener: std::net::TcpListener,
    daemon: Addr<Daemon>,
    journal: Arc<dyn Journal>,
    token: String,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return crate::say!("pmx: the HTTP listener is unusable: {e}"),
    };
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return crate::say!("pmx: the HTTP listener is unusable: {e}"),
    };
    let rate = metrics::EventRate::default();
    actix::spawn(rate.clone().track(journal.clone()));
    let web = Web {
        daemon,
        journal,
        guard: Arc::new(auth::Guard::new(local, token)),
        uid: rustix::process::getuid().as_raw(),
        rate,
    };
    let app = Router::new()
        .route("/", get(page(INDEX, "text/html; charset=utf-8")))
        .route(
            "/app.js",
            get(page(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route("/style.css", get(page(STYLE, "text/css; charset=utf-8")))
        .route("/metrics", get(metrics::scrape))
        .route("/api/apps", get(api::apps))
        .route("/api/samples", get(api::samples))
        .route("/api/apps/{name}", get(api::app))
        .route("/api/apps/{name}/history", get(api::history))
        .route("/api/apps/{name}/logs", get(api::logs))
        .route("/api/apps/{name}/{action}", post(api::act))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::check,
        ))
        .with_state(web);
    accept(listener, app).await
}

/// At most this many HTTP connections at once: further clients wait in the kernel's
/// backlog and hold none of the daemon's descriptors.
const MAX_CONNECTIONS: usize = 64;
/// A client has this long to send a request's headers, on a new connection and between
/// requests on a kept-alive one.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer than this (no answer streams).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Serves each connection with hyper, within the cap and the timeouts above: idle clients,
/// however many, cannot take the descriptors the apps' restarts need.
async fn accept(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, for instance: back off instead of spinning.
                crate::say!("pmx: HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        actix::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request.map(axum::body::Body::new))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// A handler serving one embedded file.
fn page(
    body: &'static str,
    kind: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone + Send + Sync + 'static {
    move || {
        let headers = [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ];
        std::future::ready((headers, body).into_response())
    }
}

/// A refusal as JSON: `{"error": "..."}`.
fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

impl Web {
    /// Asks the daemon; a failure becomes the HTTP status its kind means.
    async fn ask(&self, request: Request, via: Option<String>) -> Result<Response, HttpResponse> {
        let asked = self.daemon.send(Handle {
            request,
            uid: self.uid,
            via,
        });
        match asked.await {
            Ok(Response::Error(f)) => Err(failure(&f)),
            Ok(r) => Ok(r),
            Err(_) => Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is shutting down",
            )),
        }
    }
}

fn failure(f: &Failure) -> HttpResponse {
    let status = match f.kind {
        FailureKind::Invalid | FailureKind::VersionMismatch => StatusCode::BAD_REQUEST,
        FailureKind::NotFound => StatusCode::NOT_FOUND,
        FailureKind::Conflict => StatusCode::CONFLICT,
        FailureKind::Denied => StatusCode::FORBIDDEN,
        FailureKind::Failed => StatusCode::BAD_GATEWAY,
        FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, &f.message)
}

/// An answer of the wrong kind: a bug, said plainly.
fn unexpected(r: &Response) -> HttpResponse {
    let message = format!("unexpected answer from the daemon: {r:?}");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, &message)
}
