//! Kubernetes: a Deployment per app (replicas = instances), its environment in a Secret,
//! `listen` ports as a Service, the health check as readiness and liveness probes, readiness
//! as a startup probe, a standard `autoscale` rule as a HorizontalPodAutoscaler and a
//! scheduled restart as a CronJob with the Role it needs.

use serde_json::{Value, json};

use pmx_core::spec::AppSpec;

use crate::app::{self, CONTAINER_DIR, dns_name};
use crate::report::{self, Report};
use crate::{Export, Input, Options, Target, containerfile, yaml};

/// The image the restart CronJob runs `kubectl` from.
const KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.33.0";

pub fn export(input: &Input, options: &Options, out: &mut Export) {
    for spec in &input.apps {
        report::unmapped(spec, Target::Kubernetes, &mut out.report);
        let name = dns_name(&spec.name);
        containerfile::check_script(spec, &mut out.report);
        if options.image.is_none() {
            containerfile::add(spec, options, out);
        }
        let autoscaled = autoscale_rule(input, spec).is_some();
        let deployment = deployment(spec, autoscaled, options, &mut out.report);
        out.add(
            format!("{name}-deployment.yaml"),
            yaml::document(&deployment),
        );
        let ports = app::tcp_ports(spec);
        if !ports.is_empty() {
            out.add(
                format!("{name}-service.yaml"),
                yaml::document(&service(spec, &ports)),
            );
        }
        if !spec.env.is_empty() {
            out.add_secret(
                format!("{name}-env-secret.yaml"),
                yaml::document(&secret(spec)),
            );
        }
        if let Some(hpa) = autoscaler(input, spec, &mut out.report) {
            out.add(format!("{name}-hpa.yaml"), yaml::document(&hpa));
        }
        if let Some(cron) = restart_schedule(input, spec, &mut out.report) {
            out.add(format!("{name}-restart.yaml"), yaml::documents(&cron));
        }
    }
}

fn labels(spec: &AppSpec) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": dns_name(&spec.name),
        "app.kubernetes.io/managed-by": "pmx-export",
    });
    if spec.options.namespace != "default" {
        labels["pmx.namespace"] = json!(dns_name(&spec.options.namespace));
    }
    labels
}

fn deployment(spec: &AppSpec, autoscaled: bool, options: &Options, report: &mut Report) -> Value {
    let name = dns_name(&spec.name);
    let o = &spec.options;
    let image = options
        .image
        .clone()
        .unwrap_or_else(|| containerfile::image_of(spec));
    let mut container = json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "workingDir": CONTAINER_DIR,
        "command": app::container_argv(spec),
        "env": [{ "name": o.instance_var, "value": "0" }],
    });
    if spec.instances > 1 {
        report.app(
            &spec.name,
            format!(
                "{}: every replica reads 0 (pods have no instance number)",
                o.instance_var
            ),
        );
    }
    if !spec.env.is_empty() {
        container["envFrom"] = json!([{ "secretRef": { "name": format!("{name}-env") } }]);
    }
    let ports = app::tcp_ports(spec);
    if !ports.is_empty() {
        container["ports"] = ports
            .iter()
            .map(|p| json!({ "containerPort": p }))
            .collect();
        report.app(
            &spec.name,
            "listen: the app binds its port itself in its container (no LISTEN_FDS); the Service spreads connections over the replicas",
        );
    }
    let mut resources = serde_json::Map::new();
    if let Some(bytes) = o.max_memory_restart_bytes {
        let quantity = app::memory_quantity(bytes);
        resources.insert("limits".into(), json!({ "memory": quantity }));
        report.app(
            &spec.name,
            format!(
                "max_memory_restart {} → memory limit {quantity}: the container is OOM-killed instead of restarted gracefully",
                pmx_core::units::format_bytes(bytes)
            ),
        );
    }
    if autoscaled {
        // The autoscaler's utilization is a % of the request: one core, as pmx counts CPU.
        resources.insert("requests".into(), json!({ "cpu": "1" }));
    }
    if !resources.is_empty() {
        container["resources"] = Value::Object(resources);
    }
    probes(spec, &mut container, report);
    if options.image.is_some() && spec.kill_signal != 2 {
        report.app(
            &spec.name,
            format!(
                "kill_signal {}: Kubernetes sends the image's STOPSIGNAL (set it in the image)",
                pmx_core::signal::signal_name(spec.kill_signal)
            ),
        );
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels(spec) },
        "spec": {
            "replicas": spec.instances,
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "template": {
                "metadata": { "labels": labels(spec) },
                "spec": {
                    "terminationGracePeriodSeconds": app::seconds(spec.kill_timeout_ms),
                    "containers": [container],
                },
            },
        },
    })
}

/// The health check as readiness and liveness probes; readiness (`wait_ready`, or a
/// `listen` app's) as a startup probe on the health URL or the first port.
fn probes(spec: &AppSpec, container: &mut Value, report: &mut Report) {
    let o = &spec.options;
    let http = o.health.as_ref().and_then(|h| {
        let (port, path) = app::health_target(&h.url)?;
        Some((h, json!({ "path": path, "port": port })))
    });
    if let Some((h, get)) = &http {
        let probe = json!({
            "httpGet": get,
            "periodSeconds": app::seconds(h.interval_ms),
            "timeoutSeconds": app::seconds(h.timeout_ms),
            "failureThreshold": h.failures,
        });
        container["readinessProbe"] = probe.clone();
        container["livenessProbe"] = probe;
    }
    let ports = app::tcp_ports(spec);
    if !o.wait_ready && ports.is_empty() {
        return;
    }
    let period = 1;
    let tries = app::seconds(o.listen_timeout_ms).max(1);
    let check = match (&http, ports.first()) {
        (Some((_, get)), _) => json!({ "httpGet": get }),
        (None, Some(port)) => json!({ "tcpSocket": { "port": port } }),
        (None, None) => {
            report.app(
                &spec.name,
                "wait_ready: Kubernetes cannot hear process.send('ready'): the pod is ready once started (give it a health check)",
            );
            return;
        }
    };
    let mut probe = check;
    probe["periodSeconds"] = json!(period);
    probe["failureThreshold"] = json!(tries);
    container["startupProbe"] = probe;
    if o.wait_ready {
        report.app(
            &spec.name,
            "wait_ready: the startup probe checks the app answers instead of its ready message",
        );
    }
}

fn service(spec: &AppSpec, ports: &[u16]) -> Value {
    let name = dns_name(&spec.name);
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "labels": labels(spec) },
        "spec": {
            "selector": { "app.kubernetes.io/name": name },
            "ports": ports.iter().map(|p| json!({
                "name": format!("port-{p}"),
                "port": p,
                "targetPort": p,
            })).collect::<Vec<_>>(),
        },
    })
}

fn secret(spec: &AppSpec) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": format!("{}-env", dns_name(&spec.name)), "labels": labels(spec) },
        "type": "Opaque",
        "stringData": spec.env,
    })
}

/// The standard `autoscale` rule of the app, if any.
fn autoscale_rule<'a>(input: &'a Input, spec: &AppSpec) -> Option<&'a crate::Rule> {
    input.rules.iter().find(|r| {
        r.standard
            .as_ref()
            .is_some_and(|s| s.function == "autoscale" && s.app == spec.name)
    })
}

/// A standard `autoscale` rule as a HorizontalPodAutoscaler on CPU utilization.
fn autoscaler(input: &Input, spec: &AppSpec, report: &mut Report) -> Option<Value> {
    let rule = autoscale_rule(input, spec)?;
    let s = rule.standard.as_ref()?;
    let arg = |k: &str| s.args.get(k).map(String::as_str);
    let number = |k: &str, default: f64| arg(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (above, below) = (number("above", 70.0), number("below", 20.0));
    let (min, max) = (number("min", 1.0) as u32, number("max", 4.0) as u32);
    let target = ((above + below) / 2.0).round() as u32;
    report.lines.push(format!(
        "rule \"{}\" (autoscale of {}) → HorizontalPodAutoscaler: Kubernetes keeps CPU near {target}% of one core per pod instead of adding a pod above {above}% and removing one below {below}% over {}",
        rule.name,
        spec.name,
        arg("window").unwrap_or("1m")
    ));
    let name = dns_name(&spec.name);
    Some(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "labels": labels(spec) },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
            "minReplicas": min.max(1),
            "maxReplicas": max.max(min.max(1)),
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": target },
                },
            }],
        },
    }))
}

/// `cron_restart` (or a `scheduled_restart` rule) as a CronJob that runs
/// `kubectl rollout restart`, with the ServiceAccount, Role and RoleBinding it needs.
fn restart_schedule(input: &Input, spec: &AppSpec, report: &mut Report) -> Option<Vec<Value>> {
    let from_rule = input
        .rules
        .iter()
        .filter_map(|r| r.standard.as_ref())
        .find(|s| s.function == "scheduled_restart" && s.app == spec.name)
        .and_then(|s| s.args.get("cron").cloned());
    let expr = spec.options.cron_restart.clone().or(from_rule)?;
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let schedule = match fields.as_slice() {
        [_, _, _, _, _] => expr.clone(),
        ["0", rest @ ..] if rest.len() == 5 => rest.join(" "),
        _ => {
            report.app(
                &spec.name,
                format!("cron {expr}: a CronJob schedule has no seconds: not exported"),
            );
            return None;
        }
    };
    let name = dns_name(&spec.name);
    let account = format!("{name}-restart");
    let meta = json!({ "name": account, "labels": labels(spec) });
    Some(vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": [name],
                "verbs": ["get", "patch"],
            }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account },
            "subjects": [{ "kind": "ServiceAccount", "name": account }],
        }),
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "jobTemplate": { "spec": { "template": { "spec": {
                    "serviceAccountName": account,
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "restart",
                        "image": KUBECTL_IMAGE,
                        "command": ["kubectl", "rollout", "restart", format!("deployment/{name}")],
                    }],
                } } } },
            },
        }),
    ])
}
