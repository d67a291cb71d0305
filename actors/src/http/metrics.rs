//! `/metrics`: every instance's status, restarts, uptime, CPU, memory, output and policy
//! actions, and the daemon's own CPU, memory, journal size and event rate, in the OpenMetrics
//! text format (prometheus-client). Labels are `app` and `id` (the pm_id): `instance` is the
//! label Prometheus gives the scraped target, so it is not used here.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use pmx_core::Millis;
use pmx_core::protocol::{Request, Response};
use pmx_core::state::Status;
use pmx_core::view::ProcessView;
use pmx_storage::Journal;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::{Web, refuse, unexpected};
use crate::clock::now_ms;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Instance {
    app: String,
    id: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceStatus {
    app: String,
    id: u32,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceStream {
    app: String,
    id: u32,
    stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstancePolicy {
    app: String,
    id: u32,
    policy: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

const STATUSES: [Status; 6] = [
    Status::Launching,
    Status::Online,
    Status::Stopping,
    Status::Stopped,
    Status::WaitingRestart,
    Status::Errored,
];

/// A status as the API spells it (`waiting-restart`).
fn label(s: Status) -> &'static str {
    match s {
        Status::WaitingRestart => "waiting-restart",
        other => other.as_str(),
    }
}

pub async fn scrape(State(web): State<Web>) -> HttpResponse {
    let processes = match web.ask(Request::List, None).await {
        Ok(Response::Processes(list)) => list.processes,
        Ok(other) => return unexpected(&other),
        Err(refused) => return refused,
    };
    let head = web.journal.head();
    let daemon = DaemonFigures {
        journal_size: web.journal.size_on_disk(),
        journal_head: head,
        event_rate: web.rate.per_second(head),
        journal_degraded: web.journal.degraded(),
        log_lines_dropped: crate::say::dropped(),
    };
    match render(&processes, &daemon, now_ms()) {
        Ok(text) => {
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            ([(header::CONTENT_TYPE, kind)], text).into_response()
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// What the daemon knows of itself beyond its apps.
struct DaemonFigures {
    journal_size: u64,
    journal_head: u64,
    event_rate: f64,
    /// Why the journal cannot be written, if it cannot.
    journal_degraded: Option<pmx_storage::Degraded>,
    /// Lines of the daemon's own log it could not write.
    log_lines_dropped: u64,
}

/// Registers a family and hands it back to be filled.
fn family<L, M>(r: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Family<L, M>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<L, M>::default();
    match unit {
        Some(unit) => r.register_with_unit(name, help, unit, f.clone()),
        None => r.register(name, help, f.clone()),
    }
    f
}

fn render(
    processes: &[ProcessView],
    daemon: &DaemonFigures,
    now: Millis,
) -> Result<String, std::fmt::Error> {
    let mut r = Registry::with_prefix("pmx");
    let status: Family<InstanceStatus, Gauge> = family(
        &mut r,
        "instance_status",
        "1 for the instance's current status, 0 for the others",
        None,
    );
    let restarts: Family<Instance, Counter> = family(
        &mut r,
        "instance_restarts",
        "Restarts of the instance",
        None,
    );
    let unstable: Family<Instance, Gauge> = family(
        &mut r,
        "instance_unstable_restarts",
        "Restarts shorter than min_uptime in a row",
        None,
    );
    let uptime: Family<Instance, FloatGauge> = family(
        &mut r,
        "instance_uptime",
        "How long the current process has run",
        Some(Unit::Seconds),
    );
    let cpu: Family<Instance, FloatGauge> = family(
        &mut r,
        "instance_cpu_usage",
        "CPU of the instance's process tree (1 is one core)",
        Some(Unit::Other("ratio".into())),
    );
    let memory: Family<Instance, Gauge> = family(
        &mut r,
        "instance_memory",
        "Resident memory of the instance's process tree",
        Some(Unit::Bytes),
    );
    let tree: Family<Instance, Gauge> = family(
        &mut r,
        "instance_processes",
        "Processes in the instance's tree",
        None,
    );
    let lines: Family<InstanceStream, Counter> = family(
        &mut r,
        "instance_log_lines",
        "Lines the instance wrote since the daemon started",
        None,
    );
    let bytes: Family<InstanceStream, Counter> = family(
        &mut r,
        "instance_log",
        "Bytes the instance wrote since the daemon started",
        Some(Unit::Bytes),
    );
    let lost: Family<Instance, Counter> = family(
        &mut r,
        "instance_log_lost",
        "Output dropped because a log file could not be written",
        Some(Unit::Bytes),
    );
    let actions: Family<InstancePolicy, Counter> = family(
        &mut r,
        "instance_policy_actions",
        "Actions a policy took on the instance since the daemon started",
        None,
    );
    for p in processes {
        let key = Instance {
            app: p.name.clone(),
            id: p.id,
        };
        for s in STATUSES {
            let labels = InstanceStatus {
                app: p.name.clone(),
                id: p.id,
                status: label(s),
            };
            status.get_or_create(&labels).set((p.status == s) as i64);
        }
        restarts.get_or_create(&key).inc_by(p.restarts as u64);
        unstable.get_or_create(&key).set(p.unstable_restarts as i64);
        let up = p.started_at.map_or(0, |t| now.saturating_sub(t));
        uptime.get_or_create(&key).set(up as f64 / 1000.0);
        cpu.get_or_create(&key).set(p.usage.tree_cpu as f64 / 100.0);
        memory.get_or_create(&key).set(p.usage.tree_memory as i64);
        tree.get_or_create(&key).set(p.usage.processes as i64);
        let o = &p.output;
        for (stream, n_lines, n_bytes) in [
            ("out", o.out_lines, o.out_bytes),
            ("err", o.err_lines, o.err_bytes),
        ] {
            let labels = InstanceStream {
                app: p.name.clone(),
                id: p.id,
                stream,
            };
            lines.get_or_create(&labels).inc_by(n_lines);
            bytes.get_or_create(&labels).inc_by(n_bytes);
        }
        lost.get_or_create(&key).inc_by(p.log_lost_bytes);
        for (policy, n) in &p.policy_actions {
            let labels = InstancePolicy {
                app: p.name.clone(),
                id: p.id,
                policy: policy.clone(),
            };
            actions.get_or_create(&labels).inc_by(*n);
        }
    }
    register_daemon(&mut r, daemon);
    let mut text = String::with_capacity(256 * processes.len() + 2048);
    encode(&mut text, &r)?;
    Ok(text)
}

/// The daemon's own figures: CPU and memory from /proc/self, the journal's size and rate.
fn register_daemon(r: &mut Registry, d: &DaemonFigures) {
    let me = procfs::process::Process::myself();
    let stat = me.as_ref().ok().and_then(|p| p.stat().ok());
    let cpu_seconds = stat.as_ref().map_or(0.0, |s| {
        (s.utime + s.stime) as f64 / procfs::ticks_per_second() as f64
    });
    let resident = me
        .as_ref()
        .ok()
        .and_then(|p| p.statm().ok())
        .map_or(0, |m| m.resident * procfs::page_size());
    let cpu = Counter::<f64, AtomicU64>::default();
    cpu.inc_by(cpu_seconds);
    r.register_with_unit("daemon_cpu", "CPU time the daemon used", Unit::Seconds, cpu);
    let gauge = |value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        g
    };
    r.register_with_unit(
        "daemon_resident_memory",
        "The daemon's resident memory",
        Unit::Bytes,
        gauge(resident as i64),
    );
    r.register_with_unit(
        "journal_size",
        "Bytes the journal takes on disk",
        Unit::Bytes,
        gauge(d.journal_size as i64),
    );
    let events = Counter::<u64>::default();
    events.inc_by(d.journal_head);
    r.register("journal_events", "Events the journal recorded", events);
    let rate = FloatGauge::default();
    rate.set(d.event_rate);
    r.register(
        "journal_events_per_second",
        "Events recorded per second over the last minute",
        rate,
    );
    let degraded = d.journal_degraded.as_ref();
    r.register(
        "journal_degraded",
        "1 while the journal cannot be written (events are held in memory)",
        gauge(i64::from(degraded.is_some())),
    );
    r.register(
        "journal_events_held",
        "Events held in memory until the journal can be written",
        gauge(degraded.map_or(0, |d| d.held as i64)),
    );
    r.register(
        "journal_events_unwritable",
        "Events of the current journal failure that did not fit in memory and are lost",
        gauge(degraded.map_or(0, |d| d.lost as i64)),
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(d.log_lines_dropped);
    r.register(
        "daemon_log_lines_dropped",
        "Lines of the daemon's own log that could not be written",
        dropped,
    );
}

/// The journal's head, seen every few seconds, to tell the event rate of the last minute
/// whoever scrapes and however often.
#[derive(Clone, Default)]
pub struct EventRate(Arc<Mutex<VecDeque<(Millis, u64)>>>);

const RATE_EVERY: Duration = Duration::from_secs(10);
const RATE_WINDOW: Millis = 60_000;

impl EventRate {
    pub async fn track(self, journal: Arc<dyn Journal>) {
        let mut tick = tokio::time::interval(RATE_EVERY);
        loop {
            tick.tick().await;
            let now = now_ms();
            let mut seen = self.seen();
            seen.push_back((now, journal.head()));
            while seen.front().is_some_and(|&(at, _)| at + RATE_WINDOW < now) {
                seen.pop_front();
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, VecDeque<(Millis, u64)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events per second from the oldest look in the window to `head` now.
    fn per_second(&self, head: u64) -> f64 {
        let Some(&(at, then)) = self.seen().front() else {
            return 0.0;
        };
        let span = now_ms().saturating_sub(at);
        if span < 1000 {
            return 0.0;
        }
        head.saturating_sub(then) as f64 * 1000.0 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_and_the_daemon_are_rendered_with_prometheus_names() {
        let view: ProcessView = serde_json::from_value(serde_json::json!({
            "id": 3, "name": "api", "index": 0, "status": "online", "pid": 42,
            "restarts": 2, "unstable_restarts": 0, "started_at": 1_000, "created_at": 0,
            "cpu": 12.5, "memory": 1024, "user": "me", "last_exit": null, "error": null,
            "command": ["node"], "out_log": "/dev/null", "error_log": "/dev/null",
            "usage": {"tree_cpu": 50.0, "tree_memory": 4096, "processes": 2},
            "output": {"out_lines": 7, "out_bytes": 70},
            "policy_actions": {"max_memory_restart": 1},
            "spec": {"name": "api", "script": "api.js", "cwd": "/"}
        }))
        .unwrap();
        let daemon = DaemonFigures {
            journal_size: 4096,
            journal_head: 10,
            event_rate: 0.5,
            journal_degraded: Some(pmx_storage::Degraded {
                error: "No space left on device".into(),
                held: 3,
                lost: 1,
            }),
            log_lines_dropped: 2,
        };
        let text = render(&[view], &daemon, 3_500).unwrap();
        for line in [
            r#"pmx_instance_status{app="api",id="3",status="online"} 1"#,
            r#"pmx_instance_status{app="api",id="3",status="errored"} 0"#,
            r#"pmx_instance_restarts_total{app="api",id="3"} 2"#,
            r#"pmx_instance_uptime_seconds{app="api",id="3"} 2.5"#,
            r#"pmx_instance_cpu_usage_ratio{app="api",id="3"} 0.5"#,
            r#"pmx_instance_memory_bytes{app="api",id="3"} 4096"#,
            r#"pmx_instance_log_lines_total{app="api",id="3",stream="out"} 7"#,
            r#"pmx_instance_log_bytes_total{app="api",id="3",stream="out"} 70"#,
            r#"pmx_instance_policy_actions_total{app="api",id="3",policy="max_memory_restart"} 1"#,
            "pmx_journal_size_bytes 4096",
            "pmx_journal_events_total 10",
            "pmx_journal_events_per_second 0.5",
            "pmx_journal_degraded 1",
            "pmx_journal_events_held 3",
            "pmx_journal_events_unwritable 1",
            "pmx_daemon_log_lines_dropped_total 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains("pmx_daemon_cpu_seconds_total "));
        assert!(text.contains("pmx_daemon_resident_memory_bytes "));
        assert!(text.ends_with("# EOF\n"));
    }
}
