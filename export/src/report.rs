//! The mapping report: one line per option or rule that does not carry over exactly, saying
//! what the target will do instead. Options that no target maps are checked here, from one
//! table; each target's module reports the differences of what it does map.

use pmx_core::spec::AppSpec;

use crate::{Input, Target};

/// What did not carry over, in the order found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
}

impl Report {
    /// A line about one app.
    pub fn app(&mut self, app: &str, text: impl AsRef<str>) {
        self.lines.push(format!("{app}: {}", text.as_ref()));
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// An option and, for each target (in `Target` order), what it does instead when the
/// target has no equivalent; `None` where the target's module maps it.
struct Row {
    option: &'static str,
    set: fn(&AppSpec) -> bool,
    instead: [Option<&'static str>; 4],
}

const NOT_EXPORTED: Option<&str> = Some("no equivalent: not exported");
const LOGS_BY_ENGINE: Option<&str> =
    Some("the engine keeps the output (kubectl logs, nomad alloc logs, docker compose logs)");

const ROWS: &[Row] = &[
    Row {
        option: "restart_delay",
        set: |s| s.restart.restart_delay_ms > 0,
        instead: [
            None,
            Some("Kubernetes restarts a container with its own back-off (10s doubling to 5m)"),
            None,
            Some("Compose restarts at once"),
        ],
    },
    Row {
        option: "exp_backoff_restart_delay",
        set: |s| s.restart.exp_backoff_restart_delay_ms.is_some(),
        instead: [
            Some("systemd waits a fixed RestartSec between restarts"),
            Some("Kubernetes restarts a container with its own back-off (10s doubling to 5m)"),
            Some("Nomad waits a fixed delay between restarts"),
            Some("Compose restarts at once"),
        ],
    },
    Row {
        option: "stop_exit_codes",
        set: |s| !s.restart.stop_exit_codes.is_empty(),
        instead: [
            None,
            Some("a Deployment restarts its containers whatever their exit code"),
            Some("Nomad restarts the task whatever its exit code"),
            Some("Compose restarts the container whatever its exit code"),
        ],
    },
    Row {
        option: "autorestart false",
        set: |s| !s.restart.autorestart,
        instead: [
            None,
            Some("a Deployment always restarts its containers (a run-once app is a Job)"),
            None,
            None,
        ],
    },
    Row {
        option: "max_restarts/min_uptime",
        set: |s| {
            let d = pmx_core::spec::RestartPolicy::default();
            s.restart.max_restarts != d.max_restarts || s.restart.min_uptime_ms != d.min_uptime_ms
        },
        instead: [
            None,
            Some("Kubernetes never gives up on a crashing container: it backs off and retries"),
            None,
            Some("Compose never gives up on a crashing container"),
        ],
    },
    Row {
        option: "shutdown_with_message",
        set: |s| s.options.shutdown_with_message,
        instead: [Some("the app is stopped by its kill_signal instead of a message"); 4],
    },
    Row {
        option: "namespace",
        set: |s| s.options.namespace != "default",
        instead: [NOT_EXPORTED, None, None, None],
    },
    Row {
        option: "max_memory_restart over",
        set: |s| s.options.max_memory_restart_for_ms > 0,
        instead: [Some("the memory limit applies at once, not after a sustained breach"); 4],
    },
    Row {
        option: "max_memory_restart growth",
        set: |s| s.options.max_memory_growth_per_hour.is_some(),
        instead: [Some("no engine restarts on memory growth: not exported"); 4],
    },
    Row {
        option: "cron_restart",
        set: |s| s.options.cron_restart.is_some(),
        instead: [
            None,
            None,
            Some("Nomad cannot restart a job on a schedule: not exported"),
            Some("Compose cannot restart a service on a schedule: not exported"),
        ],
    },
    Row {
        option: "watch",
        set: |s| !s.options.watch.is_empty(),
        instead: [
            None,
            Some("a container's files change with a new image: not exported"),
            Some("a task's files change with a new job version: not exported"),
            Some("a container's files change with a new image: not exported"),
        ],
    },
    Row {
        option: "out_file/error_file/log_file",
        set: |s| {
            let o = &s.options;
            o.out_file.is_some() || o.error_file.is_some() || o.log_file.is_some()
        },
        instead: [None, LOGS_BY_ENGINE, LOGS_BY_ENGINE, LOGS_BY_ENGINE],
    },
    Row {
        option: "pid_file",
        set: |s| s.options.pid_file.is_some(),
        instead: [NOT_EXPORTED; 4],
    },
    Row {
        option: "merge_logs",
        set: |s| s.options.merge_logs,
        instead: [None, LOGS_BY_ENGINE, LOGS_BY_ENGINE, LOGS_BY_ENGINE],
    },
    Row {
        option: "time/log_date_format",
        set: |s| s.options.time || s.options.log_date_format.is_some(),
        instead: [Some(
            "the engine timestamps each line itself (journalctl, kubectl logs --timestamps)",
        ); 4],
    },
    Row {
        option: "log_type json",
        set: |s| s.options.log_type != pmx_core::logs::LogType::Raw,
        instead: [Some("lines are kept as the app writes them"); 4],
    },
    Row {
        option: "log_rotate",
        set: |s| s.options.log_rotate != Default::default(),
        instead: [Some("the engine (or logrotate) rotates logs with its own settings"); 4],
    },
    Row {
        option: "increment_var",
        set: |s| s.options.increment_var.is_some(),
        instead: [NOT_EXPORTED; 4],
    },
    Row {
        option: "treekill false",
        set: |s| !s.options.treekill,
        instead: [
            None,
            Some("stopping a container ends all its processes"),
            Some("stopping a task ends all its processes"),
            Some("stopping a container ends all its processes"),
        ],
    },
    Row {
        option: "health",
        set: |s| s.options.health.is_some(),
        instead: [
            Some("systemd has no health checks: not exported"),
            None,
            None,
            None,
        ],
    },
    Row {
        option: "depends_on",
        set: |s| !s.options.depends_on.is_empty(),
        instead: [
            None,
            Some("Kubernetes starts every Deployment at once: the app must wait for what it needs"),
            Some("Nomad starts every group at once: the app must wait for what it needs"),
            None,
        ],
    },
    Row {
        option: "deep_monitoring",
        set: |s| s.options.deep_monitoring,
        instead: [Some("Node's runtime figures are pmx's own: not exported"); 4],
    },
];

fn index(target: Target) -> usize {
    match target {
        Target::Systemd => 0,
        Target::Kubernetes => 1,
        Target::Nomad => 2,
        Target::Compose => 3,
    }
}

/// Reports the options of `spec` that `target` has no equivalent for.
pub fn unmapped(spec: &AppSpec, target: Target, report: &mut Report) {
    for row in ROWS {
        if let Some(instead) = row.instead[index(target)]
            && (row.set)(spec)
        {
            report.app(&spec.name, format!("{}: {instead}", row.option));
        }
    }
}

/// The standard rules a target carries out itself (`scheduled_restart` as a timer, …).
fn handled(target: Target, function: &str) -> bool {
    matches!(
        (target, function),
        (Target::Systemd, "scheduled_restart")
            | (Target::Kubernetes, "scheduled_restart")
            | (Target::Kubernetes, "autoscale")
    )
}

/// Reports every rule the target does not carry out.
pub fn rules(input: &Input, target: Target, report: &mut Report) {
    for rule in &input.rules {
        let what = match &rule.standard {
            Some(s) if handled(target, &s.function) => continue,
            Some(s) => format!("{} of {}", s.function, s.app),
            None => format!("{}, custom logic", rule.trigger),
        };
        report.lines.push(format!(
            "rule \"{}\" ({what}) has no equivalent in {}: not exported",
            rule.name,
            target.name()
        ));
    }
}
