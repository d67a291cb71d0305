//! The JSON API: `GET /api/apps`, `/api/apps/{name}`, `/api/apps/{name}/history`,
//! `/api/apps/{name}/logs`, `/api/samples`, and
//! `POST /api/apps/{name}/{restart|reload|stop|start}`. Each asks the daemon one request, the
//! same one the CLI would send.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use pmx_core::describe;
use pmx_core::event::{Cause, Event, EventKind};
use pmx_core::logs::Stream;
use pmx_core::protocol::{HistoryRequest, LogsRequest, ReloadRequest, Request, Response, Targets};
use pmx_core::spec::AppSpec;
use pmx_core::state::Status;
use pmx_core::view::ProcessView;
use serde::{Deserialize, Serialize};

use super::{Web, refuse, unexpected};

/// Env values leave the daemon only through `pmx env`: the API shows keys.
fn redacted(mut views: Vec<ProcessView>) -> Vec<ProcessView> {
    views.iter_mut().for_each(ProcessView::redact_env);
    views
}

/// Every instance, as `pmx jlist --json` would show it (env values redacted).
pub async fn apps(State(web): State<Web>) -> HttpResponse {
    match web.ask(Request::List, None).await {
        Ok(Response::Processes(list)) => Json(redacted(list.processes)).into_response(),
        Ok(other) => unexpected(&other),
        Err(refused) => refused,
    }
}

/// Every instance's last minute of samples, `[{"id": pm_id, "samples": [[at, cpu %, memory
/// bytes], …]}]` oldest first: a chart opened now starts with them instead of empty.
pub async fn samples(State(web): State<Web>) -> HttpResponse {
    match web.ask(Request::Recent, None).await {
        Ok(Response::Recent(recent)) => Json(recent.instances).into_response(),
        Ok(other) => unexpected(&other),
        Err(refused) => refused,
    }
}

#[derive(Serialize)]
struct AppPage {
    name: String,
    spec: std::sync::Arc<AppSpec>,
    /// The spec in the user's words, as `describe` shows it: `[label, value]`.
    settings: Vec<(&'static str, String)>,
    instances: Vec<ProcessView>,
}

/// One app: its spec and its instances.
pub async fn app(State(web): State<Web>, Path(name): Path<String>) -> HttpResponse {
    let request = Request::Describe(Targets {
        targets: vec![name.clone()],
        force: false,
    });
    match web.ask(request, None).await {
        Ok(Response::Processes(mut list)) => {
            // `all` (or several names) is not one app: this page is the first one's.
            let Some(first) = list.processes.first().cloned() else {
                return refuse(StatusCode::NOT_FOUND, &format!("no app {name}"));
            };
            list.processes.retain(|p| p.name == first.name);
            let instances = redacted(list.processes);
            let spec = instances.first().map_or(first.spec, |v| v.spec.clone());
            let settings = describe::settings(&spec, &first.command);
            let page = AppPage {
                name: first.name,
                spec,
                settings,
                instances,
            };
            Json(page).into_response()
        }
        Ok(other) => unexpected(&other),
        Err(refused) => refused,
    }
}

#[derive(Deserialize)]
pub struct Window {
    /// Milliseconds since the epoch.
    since: Option<u64>,
    until: Option<u64>,
    /// The last `limit` events of the window (default 500).
    limit: Option<usize>,
}

const HISTORY_DEFAULT: usize = 500;
const HISTORY_MAX: usize = 10_000;

/// A journal event with what the timeline needs: its class, and it and its cause in words.
#[derive(Serialize)]
struct Point {
    #[serde(flatten)]
    event: Event,
    class: &'static str,
    text: String,
    because: String,
}

/// The app's journal events in a time window, oldest first.
pub async fn history(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(w): Query<Window>,
) -> HttpResponse {
    let request = Request::History(HistoryRequest {
        target: name,
        limit: Some(w.limit.unwrap_or(HISTORY_DEFAULT).min(HISTORY_MAX)),
        since: w.since,
        until: w.until,
        ..Default::default()
    });
    match web.ask(request, None).await {
        Ok(Response::History(list)) => {
            // An exit while the instance was stopping is the stop, not a crash.
            let mut stopping = std::collections::HashSet::new();
            let points: Vec<Point> = list
                .events
                .into_iter()
                .map(|event| {
                    let mut class = class(&event);
                    match &event.kind {
                        EventKind::Transition(t) if t.to == Status::Stopping => {
                            stopping.insert(event.instance);
                        }
                        EventKind::Transition(_) => {
                            stopping.remove(&event.instance);
                        }
                        EventKind::Exited { .. } if stopping.contains(&event.instance) => {
                            class = "stopped";
                        }
                        _ => {}
                    }
                    Point {
                        class,
                        text: describe::event(&event.kind),
                        because: describe::cause(&event.cause),
                        event,
                    }
                })
                .collect();
            Json(serde_json::json!({ "events": points, "cut": list.cut })).into_response()
        }
        Ok(other) => unexpected(&other),
        Err(refused) => refused,
    }
}

/// How the timeline draws an event.
fn class(e: &Event) -> &'static str {
    let by_policy = matches!(e.cause, Cause::Rule { .. });
    match &e.kind {
        EventKind::Transition(t) => match t.to {
            _ if by_policy => "policy",
            Status::WaitingRestart => "crash",
            Status::Errored => "errored",
            Status::Online => "online",
            Status::Stopped => "stopped",
            Status::Launching if t.from == Status::WaitingRestart => "restart",
            _ => "transition",
        },
        EventKind::Exited { .. } => "exit",
        EventKind::Command { .. } | EventKind::Reload(_) if by_policy => "policy",
        EventKind::Command { verb } if verb == "restart" || verb == "reload" => "restart",
        EventKind::Reload(_) => "restart",
        EventKind::Command { .. } => "command",
        EventKind::RuleFailed { .. } => "policy",
        EventKind::AppCreated { .. }
        | EventKind::AppDeleted { .. }
        | EventKind::ConfigApplied { .. }
        | EventKind::ConfigChanged { .. }
        | EventKind::ConfigRejected { .. }
        | EventKind::RulesLoaded { .. } => "config",
        _ => "other",
    }
}

#[derive(Deserialize)]
pub struct Tail {
    lines: Option<usize>,
}

#[derive(Serialize)]
struct SourceTail {
    id: u32,
    stream: Stream,
    lines: Vec<String>,
}

const TAIL_DEFAULT: usize = 100;
const TAIL_MAX: usize = 2_000;

/// The last lines of each of the app's log files.
pub async fn logs(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(t): Query<Tail>,
) -> HttpResponse {
    let request = Request::Logs(LogsRequest {
        targets: vec![name],
        follow: false,
    });
    let sources = match web.ask(request, None).await {
        Ok(Response::LogSources(s)) => s.sources,
        Ok(other) => return unexpected(&other),
        Err(refused) => return refused,
    };
    let n = t.lines.unwrap_or(TAIL_DEFAULT).min(TAIL_MAX);
    let tails: Vec<SourceTail> = crate::logs::tails(sources, n)
        .await
        .into_iter()
        .map(|(s, lines)| SourceTail {
            id: s.id,
            stream: s.stream,
            lines,
        })
        .collect();
    Json(serde_json::json!({ "sources": tails })).into_response()
}

/// `restart`, `reload`, `stop` or `start` the app, as the CLI would; the answer is the
/// instances afterwards and any notes.
pub async fn act(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((name, action)): Path<(String, String)>,
) -> HttpResponse {
    let targets = Targets {
        targets: vec![name.clone()],
        force: false,
    };
    let request = match action.as_str() {
        "restart" => Request::Restart(targets),
        "stop" => Request::Stop(targets),
        "start" => Request::StartApps(targets),
        "reload" => Request::Reload(ReloadRequest {
            targets: vec![name],
            parallel: 1,
        }),
        _ => {
            let message = format!("no action {action}: restart, reload, stop or start");
            return refuse(StatusCode::NOT_FOUND, &message);
        }
    };
    let via = format!("dashboard from {}", peer.ip());
    match web.ask(request, Some(via)).await {
        Ok(Response::Processes(list)) => Json(list).into_response(),
        Ok(other) => unexpected(&other),
        Err(refused) => refused,
    }
}
