//! systemd: a service per app (a template `NAME@.service` and a `NAME.target` when it has
//! several instances), its environment in an `EnvironmentFile`, `listen` as socket units,
//! `cron_restart` as a timer and `watch` as a path unit, both starting a restart service.

use std::fmt::Write;

use pmx_core::spec::{AppSpec, Condition};
use pmx_core::units::format_duration_ms;

use crate::app::{self, unit_name};
use crate::report::{self, Report};
use crate::{Export, Input, Options, Target};

/// Where the units expect each app's environment file.
const ENV_DIR: &str = "/etc/pmx";

pub fn export(input: &Input, options: &Options, out: &mut Export) {
    for spec in &input.apps {
        app_units(input, spec, options, out);
    }
}

/// The service units that run `name`'s instances (`api.service`, or `api@0.service` …).
fn instance_units(input: &Input, name: &str) -> Vec<String> {
    let unit = unit_name(name);
    match input.apps.iter().find(|a| a.name == name) {
        Some(spec) if spec.instances > 1 => (0..spec.instances)
            .map(|i| format!("{unit}@{i}.service"))
            .collect(),
        _ => vec![format!("{unit}.service")],
    }
}

fn app_units(input: &Input, spec: &AppSpec, options: &Options, out: &mut Export) {
    let report = &mut out.report;
    report::unmapped(spec, Target::Systemd, report);
    let unit = unit_name(&spec.name);
    let template = spec.instances > 1;
    let service = service_unit(input, spec, options, report);
    if template {
        out.add(format!("{unit}@.service"), service);
        let all = instance_units(input, &spec.name).join(" ");
        out.add(
            format!("{unit}.target"),
            format!(
                "# The {n} instances of {name}: systemctl enable --now {unit}.target\n\
                 [Unit]\nDescription={name} (exported by pmx)\nWants={all}\n\n\
                 [Install]\nWantedBy=multi-user.target\n",
                n = spec.instances,
                name = spec.name,
            ),
        );
    } else {
        out.add(format!("{unit}.service"), service);
    }
    if !spec.env.is_empty() {
        out.add_secret(format!("{unit}.env"), environment_file(spec));
    }
    if let Some(socket) = socket_unit(spec, &mut out.report) {
        let name = if template {
            format!("{unit}@.socket")
        } else {
            format!("{unit}.socket")
        };
        out.add(name, socket);
    }
    restart_units(input, spec, out);
}

fn service_unit(input: &Input, spec: &AppSpec, options: &Options, report: &mut Report) -> String {
    let o = &spec.options;
    let r = &spec.restart;
    let mut unit = String::new();
    let _ = writeln!(unit, "# Exported by pmx from app \"{}\".", spec.name);
    if !spec.env.is_empty() {
        let _ = writeln!(
            unit,
            "# Its environment: {}.env, installed as {ENV_DIR}/{}.env (mode 0600).",
            unit_name(&spec.name),
            unit_name(&spec.name)
        );
    }
    unit.push_str("[Unit]\n");
    let _ = writeln!(unit, "Description={} (exported by pmx)", spec.name);
    let mut after = vec!["network.target".to_string()];
    let mut requires = Vec::new();
    for dep in &o.depends_on {
        let units = instance_units(input, &dep.app);
        after.extend(units.iter().cloned());
        requires.extend(units);
        // `After=` waits for the start job: for a `Type=notify` unit (wait_ready), until it
        // is ready, as `ready` asks.
        if dep.condition == Condition::Healthy {
            report.app(
                &spec.name,
                format!(
                    "depends_on {} healthy: systemd waits until it is ready (no health checks)",
                    dep.app
                ),
            );
        }
    }
    // Its sockets come from its socket unit, which a direct start must bring up first.
    if !spec.listen_addrs().is_empty() {
        let socket = if spec.instances > 1 {
            format!("{}@%i.socket", unit_name(&spec.name))
        } else {
            format!("{}.socket", unit_name(&spec.name))
        };
        after.push(socket.clone());
        requires.push(socket);
    }
    let _ = writeln!(unit, "After={}", after.join(" "));
    if !requires.is_empty() {
        let _ = writeln!(unit, "Requires={}", requires.join(" "));
    }
    if r.autorestart {
        // pmx gives up after max_restarts runs in a row shorter than min_uptime; systemd
        // after so many starts within a window.
        let burst = r.max_restarts + 1;
        let window = u64::from(burst) * (r.min_uptime_ms + r.restart_delay_ms);
        let _ = writeln!(
            unit,
            "StartLimitIntervalSec={}",
            format_duration_ms(window.max(1000))
        );
        let _ = writeln!(unit, "StartLimitBurst={burst}");
    }
    if spec.instances > 1 {
        let _ = writeln!(unit, "PartOf={}.target", unit_name(&spec.name));
    }
    unit.push_str("\n[Service]\n");
    if o.wait_ready {
        unit.push_str("Type=notify\nNotifyAccess=all\n");
        let _ = writeln!(
            unit,
            "TimeoutStartSec={}",
            format_duration_ms(o.listen_timeout_ms)
        );
        report.app(
            &spec.name,
            "wait_ready: the app must tell systemd it is ready (sd_notify READY=1) instead of process.send('ready')",
        );
    } else {
        unit.push_str("Type=simple\n");
    }
    if let Some(user) = &options.user {
        let _ = writeln!(unit, "User={user}");
    }
    let _ = writeln!(unit, "WorkingDirectory={}", spec.cwd);
    let argv: Vec<String> = app::host_argv(spec).iter().map(|w| exec_word(w)).collect();
    let _ = writeln!(unit, "ExecStart={}", argv.join(" "));
    if !spec.env.is_empty() {
        let _ = writeln!(
            unit,
            "EnvironmentFile={ENV_DIR}/{}.env",
            unit_name(&spec.name)
        );
    }
    let instance = if spec.instances > 1 { "%i" } else { "0" };
    let _ = writeln!(unit, "Environment={}={instance}", o.instance_var);
    let _ = writeln!(
        unit,
        "Restart={}",
        if r.autorestart { "always" } else { "no" }
    );
    if r.restart_delay_ms > 0 {
        let _ = writeln!(
            unit,
            "RestartSec={}",
            format_duration_ms(r.restart_delay_ms)
        );
    }
    if !r.stop_exit_codes.is_empty() {
        let codes: Vec<String> = r.stop_exit_codes.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(unit, "RestartPreventExitStatus={}", codes.join(" "));
    }
    let _ = writeln!(
        unit,
        "KillSignal={}",
        pmx_core::signal::signal_name(spec.kill_signal)
    );
    let _ = writeln!(
        unit,
        "TimeoutStopSec={}",
        format_duration_ms(spec.kill_timeout_ms)
    );
    if !o.treekill {
        unit.push_str("KillMode=process\n");
    }
    if let Some(bytes) = o.max_memory_restart_bytes {
        let _ = writeln!(unit, "MemoryMax={bytes}");
        report.app(
            &spec.name,
            format!(
                "max_memory_restart {} → MemoryMax={bytes}: the kernel OOM-kills the service (then Restart= applies) instead of a graceful restart",
                pmx_core::units::format_bytes(bytes)
            ),
        );
    }
    log_lines(spec, &mut unit, report);
    unit.push_str("\n[Install]\n");
    if spec.instances > 1 {
        let _ = writeln!(unit, "WantedBy={}.target", unit_name(&spec.name));
    } else {
        unit.push_str("WantedBy=multi-user.target\n");
    }
    unit
}

/// `StandardOutput=append:` for the app's log files; each instance its own file unless
/// `merge_logs`, as pmx names them.
fn log_lines(spec: &AppSpec, unit: &mut String, report: &mut Report) {
    let o = &spec.options;
    let per_instance = |path: &str| -> String {
        if spec.instances <= 1 || o.merge_logs {
            return path.to_string();
        }
        match path.rsplit_once('.') {
            Some((stem, ext)) if !ext.contains('/') => format!("{stem}-%i.{ext}"),
            _ => format!("{path}-%i"),
        }
    };
    let out = o.out_file.as_ref().or(o.log_file.as_ref());
    let err = o.error_file.as_ref().or(o.log_file.as_ref());
    if o.log_file.is_some() && o.out_file.is_some() && o.error_file.is_some() {
        report.app(
            &spec.name,
            "log_file: systemd writes each stream to one file (out_file, error_file): not exported",
        );
    }
    if let Some(path) = out {
        let _ = writeln!(unit, "StandardOutput=append:{}", per_instance(path));
    }
    if let Some(path) = err {
        let _ = writeln!(unit, "StandardError=append:{}", per_instance(path));
    }
}

/// A word of `ExecStart=`: quoted when it holds spaces or quotes; `$` and `%` doubled so
/// systemd expands nothing.
fn exec_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || "\"'\\;".contains(c));
    if plain {
        escaped
    } else {
        format!(
            "\"{}\"",
            escaped
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    }
}

/// `KEY="value"` lines in systemd's `EnvironmentFile` syntax.
fn environment_file(spec: &AppSpec) -> String {
    let mut text = format!("# The environment of {} (exported by pmx).\n", spec.name);
    for (key, value) in &spec.env {
        let value = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(text, "{key}=\"{value}\"");
    }
    text
}

/// `listen` as a socket unit: systemd binds and hands the sockets over with `LISTEN_FDS`,
/// as pmx does; several instances each get their own socket on the port (`ReusePort`).
fn socket_unit(spec: &AppSpec, report: &mut Report) -> Option<String> {
    let addrs = spec.listen_addrs();
    if addrs.is_empty() {
        return None;
    }
    let mut unit = format!(
        "# The sockets pmx held for {name}: systemd binds them and passes them with LISTEN_FDS.\n\
         [Unit]\nDescription={name} sockets (exported by pmx)\n\n[Socket]\n",
        name = spec.name
    );
    for addr in &addrs {
        let _ = writeln!(unit, "ListenStream={}", listen_stream(addr));
        if spec.instances > 1 && addr.port().is_none() {
            report.app(
                &spec.name,
                format!("listen {}: a Unix socket cannot be shared by {} instances under systemd: each binds its own", listen_stream(addr), spec.instances),
            );
        }
    }
    if spec.instances > 1 {
        unit.push_str("ReusePort=yes\n");
    }
    unit.push_str("\n[Install]\nWantedBy=sockets.target\n");
    Some(unit)
}

fn listen_stream(addr: &pmx_core::listen::ListenAddr) -> String {
    match addr {
        pmx_core::listen::ListenAddr::Tcp(a) if a.ip().is_unspecified() && a.is_ipv4() => {
            a.port().to_string()
        }
        pmx_core::listen::ListenAddr::Tcp(a) => a.to_string(),
        pmx_core::listen::ListenAddr::Unix(path) => path.clone(),
    }
}

/// `cron_restart` (or a `scheduled_restart` rule) as a timer and `watch` as a path unit,
/// both starting `NAME-restart.service`, which restarts the app's units.
fn restart_units(input: &Input, spec: &AppSpec, out: &mut Export) {
    let unit = unit_name(&spec.name);
    let mut schedules: Vec<String> = spec.options.cron_restart.iter().cloned().collect();
    schedules.extend(
        input
            .rules
            .iter()
            .filter_map(|r| r.standard.as_ref())
            .filter(|s| s.function == "scheduled_restart" && s.app == spec.name)
            .filter_map(|s| s.args.get("cron").cloned()),
    );
    let watch = &spec.options.watch;
    if schedules.is_empty() && watch.is_empty() {
        return;
    }
    let units = instance_units(input, &spec.name).join(" ");
    out.add(
        format!("{unit}-restart.service"),
        format!(
            "# Restarts {name}: started by its timer (cron_restart) or path unit (watch).\n\
             [Unit]\nDescription=Restart {name} (exported by pmx)\n\n\
             [Service]\nType=oneshot\nExecStart=systemctl restart {units}\n",
            name = spec.name
        ),
    );
    let mut calendars = Vec::new();
    for expr in &schedules {
        match calendar(expr) {
            Some(c) => calendars.push(c),
            None => out.report.app(
                &spec.name,
                format!("cron {expr}: no OnCalendar= form for it: not exported"),
            ),
        }
    }
    if !calendars.is_empty() {
        let mut timer = format!(
            "# cron {} for {}\n[Unit]\nDescription=Scheduled restart of {} (exported by pmx)\n\n[Timer]\n",
            schedules.join(", "),
            spec.name,
            spec.name
        );
        for c in &calendars {
            let _ = writeln!(timer, "OnCalendar={c}");
        }
        let _ = writeln!(timer, "Unit={unit}-restart.service");
        timer.push_str("\n[Install]\nWantedBy=timers.target\n");
        out.add(format!("{unit}-restart.timer"), timer);
    }
    if !watch.is_empty() {
        let mut path = format!(
            "# watch of {}\n[Unit]\nDescription=Restart {} when its files change (exported by pmx)\n\n[Path]\n",
            spec.name, spec.name
        );
        for w in watch {
            let abs = std::path::Path::new(&spec.cwd).join(w);
            let _ = writeln!(path, "PathChanged={}", abs.to_string_lossy());
        }
        let _ = writeln!(path, "Unit={unit}-restart.service");
        path.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        out.add(format!("{unit}-watch.path"), path);
        out.report.app(
            &spec.name,
            "watch: systemd sees changes to the watched paths themselves, not in their subdirectories",
        );
        if !spec.options.ignore_watch.is_empty() {
            out.report.app(
                &spec.name,
                "ignore_watch: path units cannot ignore files: not exported",
            );
        }
    }
}

const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A cron expression (5 fields, or 6 with seconds first) as `OnCalendar=`
/// (`0 4 * * 1` → `Mon *-*-* 04:00:00`); `None` for what calendar events cannot say.
pub fn calendar(expr: &str) -> Option<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        _ => return None,
    };
    let [min, hour, dom, mon, dow] = rest else {
        return None;
    };
    let time = |f: &str| -> Option<String> {
        let v = value(f, 0)?;
        let digit = v.len() == 1 && v.chars().all(|c| c.is_ascii_digit());
        Some(if digit { format!("0{v}") } else { v })
    };
    let days = if *dow == "*" {
        String::new()
    } else {
        let mut names = Vec::new();
        for part in dow.split(',') {
            let name = |d: &str| d.parse::<usize>().ok().and_then(|n| DAYS.get(n).copied());
            match part.split_once('-') {
                Some((a, b)) => names.push(format!("{}..{}", name(a)?, name(b)?)),
                None => names.push(name(part)?.to_string()),
            }
        }
        format!("{} ", names.join(","))
    };
    Some(format!(
        "{days}*-{}-{} {}:{}:{}",
        value(mon, 1)?,
        value(dom, 1)?,
        time(hour)?,
        time(min)?,
        time(sec)?
    ))
}

/// One numeric cron field in calendar syntax: `*`, `5`, `1,2`, `1-5` → `1..5`, `*/15` →
/// `0/15` (from `first`, the field's lowest value).
fn value(field: &str, first: u32) -> Option<String> {
    if field == "*" {
        return Some("*".into());
    }
    if let Some(step) = field.strip_prefix("*/") {
        step.parse::<u32>().ok()?;
        return Some(format!("{first}/{step}"));
    }
    let parts: Option<Vec<String>> = field
        .split(',')
        .map(|p| match p.split_once('-') {
            Some((a, b)) => {
                a.parse::<u32>().ok()?;
                b.parse::<u32>().ok()?;
                Some(format!("{a}..{b}"))
            }
            None => p.parse::<u32>().ok().map(|n| n.to_string()),
        })
        .collect();
    Some(parts?.join(","))
}
