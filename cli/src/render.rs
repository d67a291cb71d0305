//! Human output: PM2's process table, `describe`, history lines, action lines.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use pmx_core::Millis;
use pmx_core::describe;
use pmx_core::event::Event;
use pmx_core::protocol::RetentionCut;
use pmx_core::state::Status;
use pmx_core::units::{format_bytes, format_uptime};
use pmx_core::view::ProcessView;

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

fn color(status: Status, text: &str) -> String {
    if !std::io::stdout().is_terminal() {
        return text.to_string();
    }
    let code = match status {
        Status::Online => "32",
        Status::Stopped => "90",
        Status::Errored => "31",
        _ => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// `[PMX] start api: 0 online (pid 1234)` for each affected process.
pub fn action(verb: &str, what: &str, affected: &[ProcessView]) {
    if affected.is_empty() {
        crate::output::say(&format!("{verb} {what}: no process"));
    }
    for p in affected {
        let pid = p.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        crate::output::say(&format!(
            "{verb} {} [{}]: {}{pid}",
            p.name,
            p.id,
            p.status.as_str()
        ));
    }
}

/// The process table, as PM2 draws it.
/// `pmx rules`.
pub fn rules(list: &pmx_core::protocol::RuleList, now: Millis) -> String {
    let Some(source) = &list.source else {
        return "no rules loaded (declare them with rule(...) in a config script, then `pmx up` it)".into();
    };
    let ago = |t: Option<Millis>| {
        t.map_or("never".into(), |t| {
            format!("{} ago", format_uptime(now.saturating_sub(t)))
        })
    };
    let mut out = format!("rules from {source}\n");
    for r in &list.rules {
        let state = if r.disabled { "disabled" } else { "active" };
        out.push_str(&format!(
            "\n{} ({}, {state})\n  runs {}, last {}; fired {}: {}\n",
            r.name,
            r.trigger,
            r.runs,
            ago(r.last_run),
            ago(r.last_fired),
            r.last_action.as_deref().unwrap_or("-"),
        ));
        if let Some(e) = &r.last_error {
            out.push_str(&format!("  {} failures, last: {e}\n", r.failures));
        }
    }
    out.trim_end().to_string()
}

pub fn table(processes: &[ProcessView], now: Millis) -> String {
    let head = [
        "id", "name", "mode", "pid", "status", "↺", "uptime", "cpu", "mem", "user",
    ];
    let rows: Vec<(Status, [String; 10])> = processes
        .iter()
        .map(|p| {
            let uptime = match (p.status, p.started_at) {
                (Status::Online, Some(t)) => format_uptime(now.saturating_sub(t)),
                _ => "0".into(),
            };
            (
                p.status,
                [
                    p.id.to_string(),
                    p.name.clone(),
                    if p.cluster_mode() { "cluster" } else { "fork" }.into(),
                    p.pid.map_or("0".into(), |x| x.to_string()),
                    p.status.as_str().into(),
                    p.restarts.to_string(),
                    uptime,
                    format!("{:.1}%", p.usage.tree_cpu),
                    format_bytes(p.usage.tree_memory),
                    p.user.to_string(),
                ],
            )
        })
        .collect();
    let width = |c: usize| {
        rows.iter()
            .map(|(_, r)| r[c].chars().count())
            .chain([head[c].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let line = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{l}{}{r}", parts.join(m))
    };
    let cells = |cells: &[String], status: Option<Status>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, text)| {
                let padded = format!(" {text:<w$} ", w = widths[c]);
                match status {
                    Some(s) if c == 4 => color(s, &padded),
                    _ => padded,
                }
            })
            .collect();
        format!("│{}│", parts.join("│"))
    };
    let mut out = vec![line("┌", "┬", "┐")];
    out.push(cells(&head.map(String::from), None));
    out.push(line("├", "┼", "┤"));
    for (status, row) in &rows {
        out.push(cells(row, Some(*status)));
    }
    out.push(line("└", "┴", "┘"));
    out.join("\n")
}

/// Every field of the spec and the runtime state of one process.
pub fn describe(p: &ProcessView, now: Millis) -> String {
    let s = &p.spec;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut rows: Vec<(&str, String)> = vec![
        ("status", p.status.as_str().into()),
        ("name", p.name.clone()),
        ("id", p.id.to_string()),
        ("instance", format!("{} of {}", p.index, s.instances)),
        ("pid", opt(p.pid.map(|x| x.to_string()))),
        ("command", p.command.join(" ")),
        (
            "exec mode",
            if p.cluster_mode() { "cluster" } else { "fork" }.into(),
        ),
        ("restarts", p.restarts.to_string()),
        ("unstable restarts", p.unstable_restarts.to_string()),
        (
            "uptime",
            opt(p.started_at.map(|t| format_uptime(now.saturating_sub(t)))),
        ),
        ("created at", timestamp(p.created_at)),
        (
            "last exit",
            opt(p.last_exit.as_ref().map(describe::exit_status)),
        ),
        ("error", opt(p.error.clone())),
        ("cpu", format!("{:.1}%", p.cpu)),
        ("memory", format_bytes(p.memory)),
        (
            "process tree",
            format!(
                "{} processes, cpu {:.1}%, memory {}",
                p.usage.processes,
                p.usage.tree_cpu,
                format_bytes(p.usage.tree_memory)
            ),
        ),
        (
            "cpu avg 1/5/15m",
            p.usage.cpu_avg.map(|c| format!("{c:.1}%")).join(" / "),
        ),
        (
            "memory avg 1/5/15m",
            p.usage.memory_avg.map(format_bytes).join(" / "),
        ),
    ];
    rows.extend(describe::settings(s, &p.command));
    rows.extend([
        (
            "watch",
            match (s.options.watch.is_empty(), p.watch_paused) {
                (true, _) => "off".into(),
                (false, false) => s.options.watch.join(", "),
                (false, true) => format!("paused by stop ({})", s.options.watch.join(", ")),
            },
        ),
        ("revision", opt(p.versioning.as_deref().map(revision))),
        (
            "app metrics",
            or_dash(
                p.agent
                    .as_ref()
                    .map(|a| a.metrics())
                    .unwrap_or_default()
                    .iter()
                    .map(|(name, value)| format!("{name} {value}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ),
        ("user", p.user.to_string()),
        ("out log path", p.out_log.to_string()),
        ("error log path", p.error_log.to_string()),
        (
            "lost log output",
            match &p.log_error {
                Some(why) => format!("{} ({why})", format_bytes(p.log_lost_bytes)),
                None => "none".into(),
            },
        ),
    ]);
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("Describing process with id {} - name {}\n", p.id, p.name);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<w$}  {v}\n"));
    }
    out
}

fn or_dash(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

/// `main@0123abcd "Fix the thing" (https://github.com/me/app.git)`.
fn revision(v: &pmx_core::versioning::Versioning) -> String {
    let mut text = v.branch.clone().unwrap_or_else(|| "detached".into());
    if let Some(id) = &v.revision {
        text.push('@');
        text.push_str(&id[..id.len().min(8)]);
    }
    if let Some(comment) = &v.comment {
        text.push_str(&format!(" {comment:?}"));
    }
    if let Some(url) = &v.url {
        text.push_str(&format!(" ({url})"));
    }
    text
}

fn timestamp(ms: Millis) -> String {
    pmx_core::time::format_local(ms, "%Y-%m-%d %H:%M:%S%.3f")
}

/// Where retention cut the record off, printed before the first event.
pub fn retention_line(cut: &RetentionCut) -> String {
    format!(
        "… {} earlier events removed by retention (through event {} of {})",
        cut.removed,
        cut.through_seq,
        timestamp(cut.through_at)
    )
}

/// One event in words: time, instance, what happened, why.
pub fn history_line(e: &Event) -> String {
    let instance = e
        .instance
        .map(|i| format!("#{i}"))
        .unwrap_or_else(|| "-".into());
    format!(
        "{}  {:<10} {:<4} {}  ← {}",
        timestamp(e.at),
        e.app,
        instance,
        describe::event(&e.kind),
        describe::cause(&e.cause)
    )
}
