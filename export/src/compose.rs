//! Compose: one file with a service per app (replicas = instances), its environment in an
//! `env_file`, the health check as a `healthcheck` run inside the container, `depends_on`
//! with conditions, the stop signal and grace period, the memory limit.

use serde_json::{Value, json};

use pmx_core::spec::{AppSpec, Condition};
use pmx_core::units::format_duration_ms;

use crate::app::{self, CONTAINER_DIR, dns_name};
use crate::report::{self, Report};
use crate::{Export, Input, Options, Target, containerfile, yaml};

pub fn export(input: &Input, options: &Options, out: &mut Export) {
    let mut services = serde_json::Map::new();
    for spec in &input.apps {
        report::unmapped(spec, Target::Compose, &mut out.report);
        containerfile::check_script(spec, &mut out.report);
        if options.image.is_none() {
            containerfile::add(spec, options, out);
        }
        let service = service(input, spec, options, &mut out.report);
        services.insert(dns_name(&spec.name), service);
        if !spec.env.is_empty() {
            let file = env_file(spec, &mut out.report);
            out.add_secret(format!("{}.env", dns_name(&spec.name)), file);
        }
    }
    let compose = json!({ "services": services });
    let header = format!(
        "# Exported by pmx from {}: docker compose up -d\n",
        if input.name.is_empty() {
            "pmx"
        } else {
            &input.name
        }
    );
    out.add(
        "compose.yaml",
        format!("{header}{}", yaml::document(&compose)),
    );
}

fn service(input: &Input, spec: &AppSpec, options: &Options, report: &mut Report) -> Value {
    let o = &spec.options;
    let name = dns_name(&spec.name);
    let mut service = json!({
        "working_dir": CONTAINER_DIR,
        "command": app::container_argv(spec),
        "environment": { o.instance_var.clone(): "0" },
        "restart": if spec.restart.autorestart { "always" } else { "no" },
        "stop_signal": pmx_core::signal::signal_name(spec.kill_signal),
        "stop_grace_period": format_duration_ms(spec.kill_timeout_ms),
    });
    match &options.image {
        Some(image) => service["image"] = json!(image),
        None => {
            let dockerfile = match &options.out_dir {
                Some(dir) => format!("{dir}/{}", containerfile::file_of(spec)),
                None => containerfile::file_of(spec),
            };
            service["image"] = json!(containerfile::image_of(spec));
            service["build"] = json!({ "context": spec.cwd, "dockerfile": dockerfile });
        }
    }
    if !spec.env.is_empty() {
        service["env_file"] = json!([format!("{name}.env")]);
    }
    let mut deploy = json!({ "replicas": spec.instances });
    if spec.instances > 1 {
        report.app(
            &spec.name,
            format!(
                "{}: every replica reads 0 (containers have no instance number)",
                o.instance_var
            ),
        );
    }
    if let Some(bytes) = o.max_memory_restart_bytes {
        let quantity = app::compose_memory(bytes);
        deploy["resources"] = json!({ "limits": { "memory": quantity } });
        report.app(
            &spec.name,
            format!(
                "max_memory_restart {} → memory limit {quantity}: the container is OOM-killed instead of restarted gracefully",
                pmx_core::units::format_bytes(bytes)
            ),
        );
    }
    service["deploy"] = deploy;
    let ports = app::tcp_ports(spec);
    if !ports.is_empty() {
        if spec.instances > 1 {
            service["expose"] = json!(ports.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            report.app(
                &spec.name,
                format!("listen: {} replicas cannot share a host port in Compose: the port is exposed to other services only (put a proxy in front)", spec.instances),
            );
        } else {
            service["ports"] = json!(ports.iter().map(|p| format!("{p}:{p}")).collect::<Vec<_>>());
            report.app(
                &spec.name,
                "listen: the app binds its port itself in its container (no LISTEN_FDS)",
            );
        }
    }
    if let Some(h) = &o.health {
        service["healthcheck"] = json!({
            "test": health_command(spec, &h.url, report),
            "interval": format_duration_ms(h.interval_ms),
            "timeout": format_duration_ms(h.timeout_ms),
            "retries": h.failures,
        });
    }
    if o.wait_ready {
        report.app(
            &spec.name,
            "wait_ready: Compose cannot hear process.send('ready'): the service counts as started at once",
        );
    }
    if !o.depends_on.is_empty() {
        let mut deps = serde_json::Map::new();
        for dep in &o.depends_on {
            let has_health = input
                .apps
                .iter()
                .any(|a| a.name == dep.app && a.options.health.is_some());
            let condition = match dep.condition {
                Condition::Healthy if has_health => "service_healthy",
                Condition::Started => "service_started",
                other => {
                    report.app(
                        &spec.name,
                        format!(
                            "depends_on {} {}: Compose waits until it is started",
                            dep.app,
                            other.as_str()
                        ),
                    );
                    "service_started"
                }
            };
            deps.insert(dns_name(&dep.app), json!({ "condition": condition }));
        }
        service["depends_on"] = Value::Object(deps);
    }
    service
}

/// A health check run in the container with what its image surely has: the app's own
/// interpreter for Node and Python, `curl` otherwise.
fn health_command(spec: &AppSpec, url: &str, report: &mut Report) -> Value {
    let program = app::interpreter(spec).unwrap_or_default();
    let program = program.rsplit('/').next().unwrap_or_default();
    let quoted = serde_json::to_string(url).unwrap_or_default();
    match program {
        "node" => json!([
            "CMD",
            "node",
            "-e",
            format!(
                "require('http').get({quoted}, r => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))"
            )
        ]),
        "python3" | "python" => json!([
            "CMD",
            program,
            "-c",
            format!("import urllib.request; urllib.request.urlopen({quoted})")
        ]),
        _ => {
            report.app(
                &spec.name,
                "health: the check runs curl in the container: the image must have it",
            );
            json!(["CMD", "curl", "-fsS", url])
        }
    }
}

/// `KEY=value` lines as Compose's `env_file` reads them (no quotes, one line each).
fn env_file(spec: &AppSpec, report: &mut Report) -> String {
    let mut text = format!("# The environment of {} (exported by pmx).\n", spec.name);
    for (key, value) in &spec.env {
        if value.contains('\n') {
            report.app(
                &spec.name,
                format!(
                    "env.{key}: a value on several lines does not fit an env_file: not exported"
                ),
            );
            continue;
        }
        text.push_str(&format!("{key}={value}\n"));
    }
    text
}
