//! Golden files of the three example configs for every target, one case per mapping row,
//! and the pieces (calendar events, names, quoting). `validators`: the files as the
//! engines' own tools read them.

mod validators;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pmx_core::protocol::StandardRule;
use pmx_core::spec::{AppSpec, Condition, Dependency, HealthCheck};

use super::*;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A config evaluated as `pmx export FILE` reads it (no variables set).
pub fn input_of(file: &Path) -> Input {
    let source = std::fs::read_to_string(file).expect("config");
    let opts = pmx_scripting::EvalOptions {
        env_name: None,
        vars: Arc::new(BTreeMap::new()),
    };
    let config = pmx_scripting::evaluate_config(file, &source, &opts).expect("valid config");
    Input::from_config(&file.to_string_lossy(), config)
}

/// Fixed interpreter versions and output directory: the golden files do not depend on the
/// machine.
pub fn options() -> Options {
    Options {
        versions: [("node", "v20.19.0"), ("python3", "3.11.2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        out_dir: Some("/out".into()),
        ..Options::default()
    }
}

/// Every file (secret ones marked) and the report, as one text.
fn rendered(export: &Export) -> String {
    let mut text = String::new();
    for f in &export.files {
        let mark = if f.secret { " (0600)" } else { "" };
        text.push_str(&format!("==> {}{mark}\n{}", f.name, f.content));
    }
    text.push_str("==> report\n");
    for line in &export.report.lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

pub const GOLDEN_INPUTS: [&str; 3] = [
    "examples/policies.rhai",
    "examples/cluster.rhai",
    "export/golden/ecosystem.config.js",
];

/// `PMX_UPDATE_GOLDEN=1 cargo test -p pmx-export` rewrites them (then read the diff).
#[test]
fn every_target_writes_the_golden_files_of_the_examples() {
    let root = repo();
    let mut differ = Vec::new();
    for rel in GOLDEN_INPUTS {
        let mut input = input_of(&root.join(rel));
        for spec in &mut input.apps {
            // `instances: "max"` is this machine's cores; the files were written with 2.
            if spec.name == "web" {
                spec.instances = 2;
            }
        }
        let stem = input.name.clone();
        let cases = [
            (Target::Systemd, false, "systemd"),
            (Target::Kubernetes, false, "kubernetes"),
            (Target::Nomad, false, "nomad"),
            (Target::Nomad, true, "nomad-json"),
            (Target::Compose, false, "compose"),
        ];
        for (target, json, suffix) in cases {
            let opts = Options { json, ..options() };
            let text = rendered(&export(&input, target, &opts))
                .replace(&root.to_string_lossy().into_owned(), "$REPO");
            let golden = root.join(format!("export/golden/{stem}.{suffix}.txt"));
            if std::env::var_os("PMX_UPDATE_GOLDEN").is_some() {
                std::fs::write(&golden, &text).expect("write golden");
                continue;
            }
            let expected = std::fs::read_to_string(&golden).unwrap_or_default();
            if expected != text {
                differ.push(golden.display().to_string());
            }
        }
    }
    assert!(
        differ.is_empty(),
        "export output differs from {differ:?} (PMX_UPDATE_GOLDEN=1 rewrites them)"
    );
}

fn base() -> AppSpec {
    AppSpec {
        name: "api".into(),
        script: "server.js".into(),
        cwd: "/srv/api".into(),
        ..AppSpec::default()
    }
}

fn db() -> AppSpec {
    AppSpec {
        name: "db".into(),
        script: "db.py".into(),
        cwd: "/srv/db".into(),
        options: pmx_core::spec::AppOptions {
            health: Some(HealthCheck {
                url: "http://127.0.0.1:5000/".into(),
                ..HealthCheck::default()
            }),
            ..Default::default()
        },
        ..AppSpec::default()
    }
}

fn standard(function: &str, args: &[(&str, &str)]) -> Rule {
    Rule {
        name: format!("{function}-api"),
        trigger: "every 15s".into(),
        standard: Some(StandardRule {
            function: function.into(),
            app: "api".into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }),
    }
}

/// One mapping row: an option set on `api`, and what the target's files (not the secret
/// ones) and report must say.
struct Case {
    name: &'static str,
    target: Target,
    change: fn(&mut AppSpec),
    rules: fn() -> Vec<Rule>,
    files: &'static [&'static str],
    absent: &'static [&'static str],
    report: Option<&'static str>,
}

const NONE: fn() -> Vec<Rule> = Vec::new;

fn case(
    name: &'static str,
    target: Target,
    change: fn(&mut AppSpec),
    files: &'static [&'static str],
) -> Case {
    Case {
        name,
        target,
        change,
        rules: NONE,
        files,
        absent: &[],
        report: None,
    }
}

fn cases() -> Vec<Case> {
    use Target::*;
    let env = |s: &mut AppSpec| {
        s.env.insert("TOKEN".into(), "hunter2".into());
    };
    let memory = |s: &mut AppSpec| s.options.max_memory_restart_bytes = Some(512 << 20);
    let listen = |s: &mut AppSpec| s.options.listen = vec!["3000".into()];
    let health = |s: &mut AppSpec| {
        s.options.health = Some(HealthCheck {
            url: "http://127.0.0.1:3000/health".into(),
            ..HealthCheck::default()
        })
    };
    let depends = |s: &mut AppSpec| {
        s.options.depends_on = vec![Dependency {
            app: "db".into(),
            condition: Condition::Healthy,
        }]
    };
    let mut all = vec![
        case(
            "systemd Restart=",
            Systemd,
            |s| s.restart.autorestart = false,
            &["Restart=no"],
        ),
        case(
            "systemd RestartSec=",
            Systemd,
            |s| s.restart.restart_delay_ms = 2000,
            &["RestartSec=2s"],
        ),
        case(
            "systemd start limits",
            Systemd,
            |s| {
                s.restart.max_restarts = 5;
                s.restart.min_uptime_ms = 2000;
            },
            &["StartLimitBurst=6", "StartLimitIntervalSec=12s"],
        ),
        case(
            "systemd KillSignal=",
            Systemd,
            |s| s.kill_signal = 15,
            &["KillSignal=SIGTERM"],
        ),
        case(
            "systemd TimeoutStopSec=",
            Systemd,
            |s| s.kill_timeout_ms = 5000,
            &["TimeoutStopSec=5s"],
        ),
        case(
            "systemd WorkingDirectory= and ExecStart=",
            Systemd,
            |_| {},
            &[
                "WorkingDirectory=/srv/api",
                "ExecStart=node /srv/api/server.js",
            ],
        ),
        case(
            "systemd RestartPreventExitStatus=",
            Systemd,
            |s| s.restart.stop_exit_codes = vec![0, 3],
            &["RestartPreventExitStatus=0 3"],
        ),
        case(
            "systemd KillMode=",
            Systemd,
            |s| s.options.treekill = false,
            &["KillMode=process"],
        ),
        case(
            "systemd instances as a template",
            Systemd,
            |s| s.instances = 3,
            &[
                "==> api@.service",
                "Environment=NODE_APP_INSTANCE=%i",
                "Wants=api@0.service api@1.service api@2.service",
            ],
        ),
        case(
            "systemd listen as a socket",
            Systemd,
            listen,
            &["==> api.socket", "ListenStream=3000", "Requires=api.socket"],
        ),
        case(
            "systemd cron_restart as a timer",
            Systemd,
            |s| s.options.cron_restart = Some("0 4 * * 1".into()),
            &[
                "OnCalendar=Mon *-*-* 04:00:00",
                "ExecStart=systemctl restart api.service",
            ],
        ),
        case(
            "systemd watch as a path unit",
            Systemd,
            |s| s.options.watch = vec!["src".into()],
            &["PathChanged=/srv/api/src", "Unit=api-restart.service"],
        ),
        case(
            "systemd logs",
            Systemd,
            |s| s.options.out_file = Some("/var/log/api.log".into()),
            &["StandardOutput=append:/var/log/api.log"],
        ),
        case(
            "Kubernetes replicas",
            Kubernetes,
            |s| s.instances = 3,
            &["replicas: 3"],
        ),
        case(
            "Kubernetes command and image",
            Kubernetes,
            |_| {},
            &[
                "- node",
                "- /app/server.js",
                "image: api:pmx",
                "FROM node:20-slim",
                "STOPSIGNAL SIGINT",
            ],
        ),
        case(
            "Kubernetes listen as a Service",
            Kubernetes,
            listen,
            &["kind: Service", "containerPort: 3000", "targetPort: 3000"],
        ),
        case(
            "Kubernetes health as probes",
            Kubernetes,
            health,
            &[
                "readinessProbe:",
                "livenessProbe:",
                "path: /health",
                "failureThreshold: 3",
            ],
        ),
        case(
            "Kubernetes kill_timeout",
            Kubernetes,
            |s| s.kill_timeout_ms = 5000,
            &["terminationGracePeriodSeconds: 5"],
        ),
        case(
            "Compose command",
            Compose,
            |_| {},
            &["- /app/server.js", "working_dir: /app"],
        ),
        case(
            "Compose restart",
            Compose,
            |s| s.restart.autorestart = false,
            &["restart: 'no'"],
        ),
        case(
            "Compose replicas",
            Compose,
            |s| s.instances = 3,
            &["replicas: 3"],
        ),
        case(
            "Compose healthcheck",
            Compose,
            health,
            &["healthcheck:", "retries: 3", "interval: 5s"],
        ),
        case(
            "Compose stop signal and grace",
            Compose,
            |s| {
                s.kill_signal = 15;
                s.kill_timeout_ms = 5000;
            },
            &["stop_signal: SIGTERM", "stop_grace_period: 5s"],
        ),
        case("Nomad count", Nomad, |s| s.instances = 3, &["count = 3"]),
        case(
            "Nomad restart and reschedule",
            Nomad,
            |s| s.restart.max_restarts = 5,
            &["attempts = 5", "mode     = \"fail\"", "reschedule {"],
        ),
        case(
            "Nomad kill_signal and kill_timeout",
            Nomad,
            |s| {
                s.kill_signal = 15;
                s.kill_timeout_ms = 5000;
            },
            &["kill_signal  = \"SIGTERM\"", "kill_timeout = \"5s\""],
        ),
        case(
            "Nomad service and check",
            Nomad,
            |s| {
                s.options.listen = vec!["3000".into()];
                s.options.health = Some(HealthCheck {
                    url: "http://127.0.0.1:3000/health".into(),
                    ..HealthCheck::default()
                });
            },
            &[
                "static = 3000",
                "service {",
                "path     = \"/health\"",
                "port     = \"port3000\"",
            ],
        ),
        case(
            "Nomad instance variable",
            Nomad,
            |_| {},
            &["NODE_APP_INSTANCE = \"${NOMAD_ALLOC_INDEX}\""],
        ),
    ];
    for target in [Systemd, Kubernetes, Nomad, Compose] {
        all.push(Case {
            name: "env values only in the secret file",
            target,
            change: env,
            rules: NONE,
            files: &[],
            absent: &["hunter2"],
            report: None,
        });
        let (files, report): (&'static [&'static str], _) = match target {
            Systemd => (&["MemoryMax=536870912"], "MemoryMax"),
            Kubernetes => (&["memory: 512Mi"], "OOM-killed"),
            Nomad => (&["memory_max = 512"], "raw_exec does not limit memory"),
            Compose => (&["memory: 512m"], "OOM-killed"),
        };
        all.push(Case {
            name: "max_memory_restart",
            target,
            change: memory,
            rules: NONE,
            files,
            absent: &[],
            report: Some(report),
        });
    }
    all.extend([
        Case {
            name: "systemd wait_ready as Type=notify",
            report: Some("sd_notify"),
            ..case("", Systemd, |s| s.options.wait_ready = true, &["Type=notify", "TimeoutStartSec=3s"])
        },
        Case {
            name: "systemd depends_on",
            report: Some("depends_on db healthy"),
            ..case("", Systemd, depends, &["After=network.target db.service", "Requires=db.service"])
        },
        Case {
            name: "Kubernetes wait_ready as a startup probe",
            report: Some("startup probe"),
            ..case("", Kubernetes, |s| {
                s.options.wait_ready = true;
                s.options.listen = vec!["3000".into()];
            }, &["startupProbe:", "tcpSocket:"])
        },
        Case {
            name: "Kubernetes autoscale as a HorizontalPodAutoscaler",
            rules: || vec![standard("autoscale", &[("above", "70"), ("below", "20"), ("min", "2"), ("max", "6")])],
            report: Some("HorizontalPodAutoscaler"),
            ..case("", Kubernetes, |_| {}, &["kind: HorizontalPodAutoscaler", "averageUtilization: 45", "minReplicas: 2", "maxReplicas: 6", "cpu: '1'"])
        },
        Case {
            name: "Kubernetes scheduled restart as a CronJob",
            rules: || vec![standard("scheduled_restart", &[("cron", "0 3 * * *")])],
            ..case("", Kubernetes, |_| {}, &["kind: CronJob", "schedule: 0 3 * * *", "kind: Role", "- patch", "deployment/api"])
        },
        Case {
            name: "Compose depends_on with a condition",
            ..case("", Compose, depends, &["condition: service_healthy"])
        },
        Case {
            name: "a custom rule is reported",
            rules: || vec![Rule { name: "night".into(), trigger: "cron 0 1 * * *".into(), standard: None }],
            report: Some("rule \"night\" (cron 0 1 * * *, custom logic) has no equivalent in Nomad: not exported"),
            ..case("", Nomad, |_| {}, &[])
        },
        Case {
            name: "memory_guard is reported",
            rules: || vec![standard("memory_guard", &[("limit", "300M")])],
            report: Some("(memory_guard of api) has no equivalent in Kubernetes"),
            ..case("", Kubernetes, |_| {}, &[])
        },
    ]);
    all
}

#[test]
fn each_mapping_row_reaches_the_files_or_the_report() {
    let mut failures = Vec::new();
    for c in cases() {
        let mut api = base();
        (c.change)(&mut api);
        let input = Input {
            name: "t".into(),
            apps: vec![api, db()],
            rules: (c.rules)(),
        };
        let out = export(&input, c.target, &options());
        let shown: String = out
            .files
            .iter()
            .filter(|f| !f.secret)
            .map(|f| format!("==> {}\n{}", f.name, f.content))
            .collect();
        let secret: String = out
            .files
            .iter()
            .filter(|f| f.secret)
            .map(|f| f.content.clone())
            .collect();
        let label = format!("{} ({})", c.name, c.target.name());
        for want in c.files {
            if !shown.contains(want) {
                failures.push(format!("{label}: no `{want}` in\n{shown}"));
            }
        }
        for not in c.absent {
            if shown.contains(not) {
                failures.push(format!("{label}: `{not}` shown"));
            }
            if !secret.contains(not) {
                failures.push(format!("{label}: `{not}` missing from the secret file"));
            }
        }
        if let Some(line) = c.report
            && !out.report.lines.iter().any(|l| l.contains(line))
        {
            failures.push(format!(
                "{label}: no report line with `{line}` in {:?}",
                out.report.lines
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_option_no_target_maps_is_reported() {
    let mut spec = base();
    spec.options.pid_file = Some("/run/api.pid".into());
    spec.options.increment_var = Some("PORT".into());
    spec.options.shutdown_with_message = true;
    spec.options.deep_monitoring = true;
    spec.options.max_memory_growth_per_hour = Some(1 << 20);
    for target in [
        Target::Systemd,
        Target::Kubernetes,
        Target::Nomad,
        Target::Compose,
    ] {
        let input = Input {
            name: "t".into(),
            apps: vec![spec.clone()],
            rules: Vec::new(),
        };
        let lines = export(&input, target, &options()).report.lines;
        for option in [
            "pid_file",
            "increment_var",
            "shutdown_with_message",
            "deep_monitoring",
            "growth",
        ] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("api: ") && l.contains(option)),
                "{option} not reported for {}: {lines:?}",
                target.name()
            );
        }
    }
}

#[test]
fn an_app_that_maps_exactly_reports_nothing() {
    let input = Input {
        name: "t".into(),
        apps: vec![base()],
        rules: Vec::new(),
    };
    for target in [
        Target::Systemd,
        Target::Kubernetes,
        Target::Nomad,
        Target::Compose,
    ] {
        let out = export(&input, target, &options());
        assert!(
            out.report.is_empty(),
            "{}: {:?}",
            target.name(),
            out.report.lines
        );
    }
}

#[test]
fn cron_expressions_become_calendar_events() {
    for (cron, calendar) in [
        ("0 4 * * 1", Some("Mon *-*-* 04:00:00")),
        ("*/15 * * * *", Some("*-*-* *:0/15:00")),
        ("30 2 1 */2 *", Some("*-1/2-1 02:30:00")),
        ("0 9 * * 1-5", Some("Mon..Fri *-*-* 09:00:00")),
        ("10 0 4 * * 0,6", Some("Sun,Sat *-*-* 04:00:10")),
        ("0 4 * * MON", None),
        ("1-10/2 * * * *", None),
    ] {
        assert_eq!(systemd::calendar(cron).as_deref(), calendar, "{cron}");
    }
}

#[test]
fn names_every_engine_accepts() {
    assert_eq!(app::dns_name("My_App.v2"), "my-app-v2");
    assert_eq!(app::dns_name("0day"), "app-0day");
    assert_eq!(app::dns_name(&"x".repeat(80)).len(), 63);
    assert_eq!(app::unit_name("svc@eu:1"), "svc-eu:1");
}

#[test]
fn shell_command_lines_run_through_sh_everywhere() {
    let mut spec = base();
    spec.script = "python3 -m http.server 8081".into();
    spec.args = vec!["--bind".into(), "127.0.0.1".into()];
    assert_eq!(
        app::host_argv(&spec),
        [
            "/bin/sh",
            "-c",
            "python3 -m http.server 8081 \"$@\"",
            "sh",
            "--bind",
            "127.0.0.1"
        ]
    );
    assert_eq!(app::container_argv(&spec), app::host_argv(&spec));
}

#[test]
fn units_run_as_the_exporting_user() {
    let input = Input {
        name: "t".into(),
        apps: vec![base()],
        rules: Vec::new(),
    };
    let as_user = Options {
        user: Some("deploy".into()),
        ..options()
    };
    let unit = |o: &Options| export(&input, Target::Systemd, o).files[0].content.clone();
    assert!(unit(&as_user).contains("\nUser=deploy\n"));
    assert!(!unit(&options()).contains("User="));
}
