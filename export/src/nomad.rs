//! Nomad: one job for the config, a group per app (`count` = instances) with a `raw_exec`
//! task running the same command, `restart` and `reschedule` as pmx restarts, the stop
//! signal and timeout, memory, `listen` ports with a `service` and its check, and the
//! environment's values in Nomad Variables read by a `template`. As HCL, or as the HTTP
//! API's JSON (`--format json`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use pmx_core::spec::AppSpec;
use pmx_core::units::format_duration_ms;

use crate::app::{self, dns_name};
use crate::report::{self, Report};
use crate::{Export, Input, Options, Target};

/// One app as a task group.
struct Group {
    name: String,
    count: u32,
    /// Port label → static port.
    ports: Vec<(String, u16)>,
    restart: Restart,
    task: Task,
}

struct Restart {
    attempts: u32,
    interval_ms: u64,
    delay_ms: u64,
}

struct Task {
    command: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// The template that reads the app's variables (`KEY={{ index . "KEY" }}` lines).
    template: Option<String>,
    kill_signal: String,
    kill_timeout_ms: u64,
    memory_mb: Option<u64>,
    service: Option<Service>,
}

struct Service {
    port: String,
    check: Option<Check>,
}

struct Check {
    path: String,
    port: String,
    interval_ms: u64,
    timeout_ms: u64,
}

pub fn export(input: &Input, options: &Options, out: &mut Export) {
    let job = dns_name(if input.name.is_empty() {
        "pmx"
    } else {
        &input.name
    });
    let mut groups = Vec::new();
    for spec in &input.apps {
        report::unmapped(spec, Target::Nomad, &mut out.report);
        groups.push(group(&job, spec, &mut out.report));
        if !spec.env.is_empty() {
            let name = dns_name(&spec.name);
            let path = variable_path(&job, &name);
            let vars = json!({ "Path": path, "Items": spec.env });
            out.add_secret(
                format!("{name}.vars.json"),
                serde_json::to_string_pretty(&vars).unwrap_or_default() + "\n",
            );
            out.report.app(
                &spec.name,
                format!("env: the values are Nomad Variables at {path}: nomad var put -in json @{name}.vars.json"),
            );
        }
    }
    if options.json {
        let text = serde_json::to_string_pretty(&job_json(&job, &groups)).unwrap_or_default();
        out.add(format!("{job}.nomad.json"), text + "\n");
    } else {
        out.add(format!("{job}.nomad.hcl"), job_hcl(&job, &groups));
    }
}

/// Where a task reads its variables without a policy of its own.
fn variable_path(job: &str, app: &str) -> String {
    format!("nomad/jobs/{job}/{app}/{app}")
}

fn group(job: &str, spec: &AppSpec, report: &mut Report) -> Group {
    let name = dns_name(&spec.name);
    let o = &spec.options;
    let r = &spec.restart;
    let ports: Vec<(String, u16)> = app::tcp_ports(spec)
        .into_iter()
        .map(|p| (format!("port{p}"), p))
        .collect();
    if !ports.is_empty() {
        report.app(
            &spec.name,
            "listen: the app binds its port itself (no LISTEN_FDS); count > 1 on one node needs SO_REUSEPORT",
        );
    }
    let argv = app::host_argv(spec);
    // raw_exec has no working directory: the command enters it first.
    let mut args = vec![
        "-c".to_string(),
        format!("cd {} && exec \"$@\"", app::shell_quote(&spec.cwd)),
        "sh".to_string(),
    ];
    args.extend(argv);
    let mut env = BTreeMap::new();
    env.insert(o.instance_var.clone(), "${NOMAD_ALLOC_INDEX}".to_string());
    let template = (!spec.env.is_empty()).then(|| {
        let mut t = format!(
            "{{{{ with nomadVar \"{}\" }}}}\n",
            variable_path(job, &name)
        );
        for key in spec.env.keys() {
            let _ = writeln!(t, "{key}={{{{ index . \"{key}\" }}}}");
        }
        t.push_str("{{ end }}\n");
        t
    });
    let memory_mb = o.max_memory_restart_bytes.map(|b| b.div_ceil(1 << 20));
    if let Some(bytes) = o.max_memory_restart_bytes {
        report.app(
            &spec.name,
            format!(
                "max_memory_restart {} → resources.memory: raw_exec does not limit memory, Nomad only reserves it",
                pmx_core::units::format_bytes(bytes)
            ),
        );
    }
    if o.wait_ready {
        report.app(&spec.name, "wait_ready: Nomad cannot hear process.send('ready'): the task counts as running at once");
    }
    let service = match (o.health.as_ref(), ports.first()) {
        (Some(h), first) => app::health_target(&h.url).map(|(port, path)| {
            let label = ports
                .iter()
                .find(|(_, p)| *p == port)
                .or(first)
                .map_or_else(|| format!("port{port}"), |(l, _)| l.clone());
            Service {
                port: label.clone(),
                check: Some(Check {
                    path,
                    port: label,
                    interval_ms: h.interval_ms,
                    timeout_ms: h.timeout_ms,
                }),
            }
        }),
        (None, Some((label, _))) => Some(Service {
            port: label.clone(),
            check: None,
        }),
        (None, None) => None,
    };
    if let Some(h) = &o.health {
        report.app(
            &spec.name,
            format!("health: a failing check marks the service unhealthy; Nomad restarts the task only with check_restart (pmx restarts after {} failures)", h.failures),
        );
    }
    let mut ports = ports;
    if let Some(s) = &service
        && !ports.iter().any(|(l, _)| *l == s.port)
        && let Some(port) = s.port.strip_prefix("port").and_then(|p| p.parse().ok())
    {
        ports.push((s.port.clone(), port));
    }
    Group {
        name: name.clone(),
        count: spec.instances,
        ports,
        restart: Restart {
            attempts: if r.autorestart { r.max_restarts } else { 0 },
            interval_ms: (u64::from(r.max_restarts) + 1)
                * (r.min_uptime_ms + r.restart_delay_ms).max(1000),
            delay_ms: r.restart_delay_ms,
        },
        task: Task {
            command: "/bin/sh".into(),
            args,
            env,
            template,
            kill_signal: pmx_core::signal::signal_name(spec.kill_signal).into_owned(),
            kill_timeout_ms: spec.kill_timeout_ms,
            memory_mb,
            service: service.map(|s| Service {
                port: s.port,
                check: s.check,
            }),
        },
    }
}

/// An HCL string: quoted, with `${` and `%{` escaped so Nomad interpolates nothing the
/// app wrote (its own `${NOMAD_ALLOC_INDEX}` is written unescaped).
fn hcl_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

fn hcl_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|i| hcl_string(i)).collect();
    format!("[{}]", inner.join(", "))
}

fn job_hcl(job: &str, groups: &[Group]) -> String {
    let mut h = String::new();
    let _ = writeln!(h, "# Exported by pmx: nomad job run {job}.nomad.hcl");
    let _ = writeln!(h, "job {} {{", hcl_string(job));
    h.push_str("  type = \"service\"\n");
    for g in groups {
        let _ = writeln!(h, "\n  group {} {{", hcl_string(&g.name));
        let _ = writeln!(h, "    count = {}", g.count);
        if !g.ports.is_empty() {
            h.push_str("    network {\n");
            for (label, port) in &g.ports {
                let _ = writeln!(
                    h,
                    "      port {} {{\n        static = {port}\n      }}",
                    hcl_string(label)
                );
            }
            h.push_str("    }\n");
        }
        let r = &g.restart;
        let _ = writeln!(
            h,
            "    restart {{\n      attempts = {}\n      interval = \"{}\"\n      delay    = \"{}\"\n      mode     = \"fail\"\n    }}",
            r.attempts,
            format_duration_ms(r.interval_ms),
            format_duration_ms(r.delay_ms)
        );
        // pmx leaves an app that keeps crashing errored, on this machine.
        h.push_str("    reschedule {\n      attempts  = 0\n      unlimited = false\n    }\n");
        let t = &g.task;
        let _ = writeln!(h, "\n    task {} {{", hcl_string(&g.name));
        h.push_str("      driver = \"raw_exec\"\n      config {\n");
        let _ = writeln!(h, "        command = {}", hcl_string(&t.command));
        let _ = writeln!(h, "        args    = {}", hcl_list(&t.args));
        h.push_str("      }\n      env {\n");
        for (k, v) in &t.env {
            // The instance variable's value is Nomad's own interpolation.
            let _ = writeln!(h, "        {k} = \"{v}\"");
        }
        h.push_str("      }\n");
        if let Some(tmpl) = &t.template {
            let _ = writeln!(
                h,
                "      template {{\n        destination = \"secrets/app.env\"\n        env         = true\n        data        = <<-EOT\n{}        EOT\n      }}",
                tmpl.lines()
                    .map(|l| format!("          {l}\n"))
                    .collect::<String>()
            );
        }
        let _ = writeln!(h, "      kill_signal  = {}", hcl_string(&t.kill_signal));
        let _ = writeln!(
            h,
            "      kill_timeout = \"{}\"",
            format_duration_ms(t.kill_timeout_ms)
        );
        if let Some(mb) = t.memory_mb {
            let _ = writeln!(
                h,
                "      resources {{\n        memory     = {mb}\n        memory_max = {mb}\n      }}"
            );
        }
        if let Some(s) = &t.service {
            let _ = writeln!(
                h,
                "      service {{\n        name     = {}\n        provider = \"nomad\"\n        port     = {}",
                hcl_string(&g.name),
                hcl_string(&s.port)
            );
            if let Some(c) = &s.check {
                let _ = writeln!(
                    h,
                    "        check {{\n          type     = \"http\"\n          path     = {}\n          port     = {}\n          interval = \"{}\"\n          timeout  = \"{}\"\n        }}",
                    hcl_string(&c.path),
                    hcl_string(&c.port),
                    format_duration_ms(c.interval_ms),
                    format_duration_ms(c.timeout_ms)
                );
            }
            h.push_str("      }\n");
        }
        h.push_str("    }\n  }\n");
    }
    h.push_str("}\n");
    h
}

/// Nanoseconds, as the API's JSON writes durations.
fn ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

fn job_json(job: &str, groups: &[Group]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let t = &g.task;
            let mut task = json!({
                "Name": g.name,
                "Driver": "raw_exec",
                "Config": { "command": t.command, "args": t.args },
                "Env": t.env,
                "KillSignal": t.kill_signal,
                "KillTimeout": ns(t.kill_timeout_ms),
            });
            if let Some(tmpl) = &t.template {
                task["Templates"] = json!([{ "EmbeddedTmpl": tmpl, "DestPath": "secrets/app.env", "Envvars": true }]);
            }
            if let Some(mb) = t.memory_mb {
                task["Resources"] = json!({ "MemoryMB": mb, "MemoryMaxMB": mb });
            }
            if let Some(s) = &t.service {
                let mut service = json!({ "Name": g.name, "Provider": "nomad", "PortLabel": s.port });
                if let Some(c) = &s.check {
                    service["Checks"] = json!([{
                        "Type": "http",
                        "Path": c.path,
                        "PortLabel": c.port,
                        "Interval": ns(c.interval_ms),
                        "Timeout": ns(c.timeout_ms),
                    }]);
                }
                task["Services"] = json!([service]);
            }
            let mut group = json!({
                "Name": g.name,
                "Count": g.count,
                "RestartPolicy": {
                    "Attempts": g.restart.attempts,
                    "Interval": ns(g.restart.interval_ms),
                    "Delay": ns(g.restart.delay_ms),
                    "Mode": "fail",
                },
                "ReschedulePolicy": { "Attempts": 0, "Unlimited": false },
                "Tasks": [task],
            });
            if !g.ports.is_empty() {
                group["Networks"] = json!([{
                    "ReservedPorts": g.ports.iter().map(|(l, p)| json!({ "Label": l, "Value": p })).collect::<Vec<_>>(),
                }]);
            }
            group
        })
        .collect();
    json!({ "Job": { "ID": job, "Name": job, "Type": "service", "TaskGroups": groups } })
}
