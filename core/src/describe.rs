//! Events, causes and exits in words: what `history`, `monit` and the dashboard show. Pure.

use crate::event::{Cause, EventKind, ReloadStep};
use crate::record::Reason;
use crate::signal::signal_name;
use crate::spec::{AppOptions, AppSpec, Interpreter};
use crate::state::Exit;
use crate::units::format_bytes;

/// How a process ended: `code 1`, `signal SIGKILL`.
pub fn exit_status(exit: &Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {}", signal_name(signal)),
        (None, None) => "unknown status".into(),
    }
}

/// Who or what caused an event.
pub fn cause(c: &Cause) -> String {
    match c {
        Cause::User { command, uid } => format!("pmx {command} by uid {uid}"),
        Cause::Process => "process".into(),
        Cause::Policy => "restart policy".into(),
        Cause::Boot => "daemon boot".into(),
        Cause::Shutdown => "daemon shutdown".into(),
        Cause::Rule {
            rule,
            reason,
            figures,
        } => {
            let mut text = format!("rule {rule}");
            if !reason.is_empty() {
                text.push_str(&format!(": {reason}"));
            }
            if !figures.is_empty() {
                text.push_str(&format!(" [{}]", figures.join(", ")));
            }
            text
        }
    }
}

fn reason(r: &Reason) -> String {
    match r {
        Reason::Command { command } => format!("{command:?}").to_lowercase(),
        Reason::Spawned { pid } => format!("spawned pid {pid}"),
        Reason::Ready { pid, how, after_ms } => {
            format!("pid {pid} ready after {after_ms} ms ({how})")
        }
        Reason::AssumedReady { pid, timeout_ms } => {
            format!("pid {pid} said nothing for listen_timeout {timeout_ms} ms: taken as ready")
        }
        Reason::NotReady { pid, timeout_ms } => {
            format!("pid {pid} not ready within listen_timeout {timeout_ms} ms (wait_ready)")
        }
        Reason::SpawnFailed { error } => format!("spawn failed: {error}"),
        Reason::SpawnRetry { error, delay_ms } => {
            format!("spawn failed for want of a resource ({error}); trying again in {delay_ms} ms")
        }
        Reason::StopCompleted { exit } => format!("exited with {}", exit_status(exit)),
        Reason::StopExitCode { exit, .. } => {
            format!("exited with {} (in stop_exit_codes)", exit_status(exit))
        }
        Reason::NoAutorestart { exit, .. } => {
            format!("exited with {} (autorestart off)", exit_status(exit))
        }
        Reason::Crashed {
            exit,
            uptime_ms,
            unstable_restarts,
            max_restarts,
            delay_ms,
            unstable,
        } => {
            let budget = if *unstable {
                format!(", unstable restart {unstable_restarts} of {max_restarts}")
            } else {
                String::new()
            };
            format!(
                "exited with {} after {uptime_ms} ms (crash){budget}, restart in {delay_ms} ms",
                exit_status(exit)
            )
        }
        Reason::GaveUp {
            unstable_restarts,
            min_uptime_ms,
            ..
        } => {
            format!("{unstable_restarts} unstable restarts (each < min_uptime {min_uptime_ms} ms)")
        }
        Reason::RestartDelayElapsed => "restart delay elapsed".into(),
    }
}

/// What happened, without time, app or cause.
pub fn event(kind: &EventKind) -> String {
    match kind {
        EventKind::AppCreated { ids, .. } => format!("registered with ids {ids:?}"),
        EventKind::AppDeleted { .. } => "deleted".into(),
        EventKind::Command { verb } => format!("command {verb}"),
        EventKind::Transition(t) => format!(
            "{} → {}: {}",
            t.from.as_str(),
            t.to.as_str(),
            reason(&t.reason)
        ),
        EventKind::Spawned { pid, .. } => format!("spawned pid {pid}"),
        EventKind::OrphanStopped { pid, processes } => {
            format!(
                "stopped {processes} processes left running by a previous daemon (run of pid {pid})"
            )
        }
        EventKind::Exited {
            pid,
            exit,
            uptime_ms,
        } => format!(
            "pid {pid} exited with {} after {uptime_ms} ms",
            exit_status(exit)
        ),
        EventKind::Signalled {
            pid,
            signal,
            processes,
        } => {
            format!(
                "sent {} to pid {pid} and its family ({processes} processes)",
                signal_name(*signal)
            )
        }
        EventKind::Reload(step) => match step {
            ReloadStep::Replacing { old_pid } => {
                format!("reload: starting a new process to replace pid {old_pid}")
            }
            ReloadStep::Replaced { old_pid, new_pid } => {
                format!("reload: pid {new_pid} is ready, pid {old_pid} leaves the rotation")
            }
            ReloadStep::Failed { old_pid, error } => format!(
                "reload failed: the new process did not become ready ({error}); {}",
                old_pid.map_or("reload stopped".into(), |p| format!(
                    "pid {p} keeps running, reload stopped"
                ))
            ),
        },
        EventKind::Scaled { from, to, ids, .. } => {
            format!("scaled {from} → {to} instances {ids:?}")
        }
        EventKind::Note { text } => format!("note: {text}"),
        EventKind::RulesLoaded { source, rules, .. } => {
            format!(
                "{} rules loaded from {source}: {}",
                rules.len(),
                rules.join(", ")
            )
        }
        EventKind::RuleFailed {
            rule,
            error,
            disabled,
        } => format!(
            "rule {rule} failed{}: {error}",
            if *disabled { " and is disabled" } else { "" }
        ),
        EventKind::CountersReset => "restart counters reset".into(),
        EventKind::DaemonStarted { pid, version } => format!("daemon {version} started, pid {pid}"),
        EventKind::Saved { apps } => {
            let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
            format!("saved {} apps: {}", apps.len(), names.join(", "))
        }
        EventKind::DaemonStopped { pid } => {
            format!("daemon pid {pid} stopped every app and exited")
        }
        EventKind::ConfigApplied {
            revision,
            source,
            plan,
            ..
        } => format!(
            "config revision {revision} applied from {source}: {}",
            plan.join("; ")
        ),
        EventKind::ConfigChanged { revision, change } => {
            format!("config revision {revision}: {change}")
        }
        EventKind::ConfigRejected { source, errors } => {
            let first = errors.lines().next().unwrap_or_default();
            format!("config {source} rejected, nothing changed: {first}")
        }
        EventKind::LogWriteFailed { file, error } => {
            format!("LOG LINES LOST: cannot write {file} ({error}); counting dropped bytes")
        }
        EventKind::LogWriteRecovered { file, lost_bytes } => {
            format!("writing {file} again; {lost_bytes} bytes of output were lost")
        }
        EventKind::JournalResumed {
            failed_ms,
            error,
            kept,
            lost,
        } => format!(
            "{}journal writable again after {} of failing ({error}): {kept} events held in memory were written, {lost} lost",
            if *lost > 0 { "EVENTS LOST: " } else { "" },
            crate::units::format_uptime(*failed_ms)
        ),
        EventKind::Compacted {
            removed,
            through_seq,
        } => format!("retention removed {removed} old events (through event {through_seq})"),
        EventKind::JournalRecovered {
            reason,
            damaged_copy,
            salvaged,
            expected_head,
            snapshot_seq,
            ..
        } => format!(
            "JOURNAL DAMAGED ({reason}): kept in {damaged_copy}; recovered {salvaged} of {expected_head} events{}",
            snapshot_seq
                .map(|s| format!(", apps from the snapshot of event {s}"))
                .unwrap_or_default()
        ),
    }
}

/// An app's settings in the user's words (PM2's option names, units, `-` for none), as
/// `describe` and the dashboard show them. `command` is what the daemon runs (the
/// interpreter it chose is its first word).
pub fn settings(s: &AppSpec, command: &[String]) -> Vec<(&'static str, String)> {
    let r = &s.restart;
    let o = &s.options;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".into()
        } else {
            items.join(", ")
        }
    };
    vec![
        ("script path", s.script.clone()),
        ("script args", s.args.join(" ")),
        ("interpreter", interpreter(s, command)),
        (
            "interpreter args",
            s.interpreter_args.as_deref().unwrap_or_default().join(" "),
        ),
        ("exec cwd", s.cwd.clone()),
        ("instances", s.instances.to_string()),
        ("env keys", list(s.env.keys().cloned().collect())),
        ("autorestart", r.autorestart.to_string()),
        ("max restarts", r.max_restarts.to_string()),
        ("min uptime", format!("{} ms", r.min_uptime_ms)),
        ("restart delay", format!("{} ms", r.restart_delay_ms)),
        (
            "exp backoff restart delay",
            opt(r.exp_backoff_restart_delay_ms.map(|d| format!("{d} ms"))),
        ),
        (
            "stop exit codes",
            list(r.stop_exit_codes.iter().map(i32::to_string).collect()),
        ),
        ("kill signal", signal_name(s.kill_signal).into_owned()),
        ("kill timeout", format!("{} ms", s.kill_timeout_ms)),
        ("max memory restart", memory_policy(o)),
        ("cron restart", opt(o.cron_restart.clone())),
        ("listen", list(o.listen.clone())),
        (
            "wait ready",
            if o.wait_ready {
                format!("yes, within {} ms", o.listen_timeout_ms)
            } else {
                "no".into()
            },
        ),
        (
            "health check",
            opt(o.health.as_ref().map(|h| {
                format!(
                    "{} every {} ms, timeout {} ms, restart after {} failures",
                    h.url, h.interval_ms, h.timeout_ms, h.failures
                )
            })),
        ),
        (
            "depends on",
            list(
                o.depends_on
                    .iter()
                    .map(|d| format!("{} ({})", d.app, d.condition.as_str()))
                    .collect(),
            ),
        ),
        ("log type", format!("{:?}", o.log_type).to_lowercase()),
    ]
}

/// The interpreter as the user would name it: the program that runs the script.
fn interpreter(s: &AppSpec, command: &[String]) -> String {
    match &s.interpreter {
        Interpreter::Program(program) => program.clone(),
        Interpreter::None => "none (executed directly)".into(),
        Interpreter::Auto => match command.first() {
            Some(first) if *first != s.script => format!("{first} (chosen by pmx)"),
            _ => "none (executed directly)".into(),
        },
    }
}

fn memory_policy(o: &AppOptions) -> String {
    let mut parts = Vec::new();
    if let Some(limit) = o.max_memory_restart_bytes {
        parts.push(match o.max_memory_restart_for_ms {
            0 => format_bytes(limit),
            ms => format!("{} for {} s", format_bytes(limit), ms / 1000),
        });
    }
    if let Some(rate) = o.max_memory_growth_per_hour {
        parts.push(format!(
            "growth above {}/h over {} s",
            format_bytes(rate),
            o.max_memory_growth_window_ms / 1000
        ));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
