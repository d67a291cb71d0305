use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn vars() -> Arc<BTreeMap<String, String>> {
    Arc::new(BTreeMap::from([
        ("HOME".to_string(), "/home/ops".to_string()),
        ("WORKERS".to_string(), "3".to_string()),
    ]))
}

/// A directory holding `app.js` and `worker.py`, and a config file path in it.
fn dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["app.js", "worker.py"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let file = dir.path().join("policies.rhai");
    (dir, file)
}

fn eval(file: &Path, source: &str, env_name: Option<&str>) -> Result<Vec<AppSpec>, ConfigError> {
    std::fs::write(file, source).unwrap();
    evaluate(
        file,
        source,
        &EvalOptions {
            env_name,
            vars: vars(),
        },
    )
}

fn errors(file: &Path, source: &str) -> String {
    eval(file, source, None).unwrap_err().to_string()
}

#[test]
fn apps_take_pm2_names_defaults_and_computed_values() {
    let (dir, file) = dir();
    let apps = eval(
        &file,
        r#"
        app(#{ name: "api", script: "app.js", instances: 4, max_memory_restart: "512M",
               env: #{ PORT: 3000 }, env_production: #{ NODE_ENV: "production" },
               cron_restart: "0 3 * * *", kill_timeout: "5s", watch: ["src"] });
        let n = parse_int(env("WORKERS", "1"));
        for i in 0..n { app(#{ name: `worker-${i}`, script: "worker.py", args: "--queue jobs" }); }
        "#,
        Some("production"),
    )
    .unwrap();
    assert_eq!(apps.len(), 4);
    let api = &apps[0];
    assert_eq!(api.instances, 4);
    assert_eq!(api.script, dir.path().join("app.js").to_string_lossy());
    assert_eq!(
        api.options.max_memory_restart_bytes,
        Some(512 * 1024 * 1024)
    );
    assert_eq!(api.env["PORT"], "3000");
    assert_eq!(
        api.env["NODE_ENV"], "production",
        "--env merges env_production"
    );
    assert_eq!(api.kill_timeout_ms, 5000);
    assert_eq!(api.restart.max_restarts, 16, "PM2's default");
    assert_eq!(apps[3].name, "worker-2");
    assert_eq!(apps[3].args, vec!["--queue", "jobs"]);
    let plain = eval(
        &file,
        r#"app(#{ script: "app.js", env_production: #{ A: "1" } });"#,
        None,
    )
    .unwrap();
    assert_eq!(plain[0].name, "app", "default name from the script");
    assert!(
        plain[0].env.is_empty(),
        "env_production only with --env production"
    );
}

#[test]
fn every_problem_is_reported_with_its_place_at_once() {
    let (_dir, file) = dir();
    let text = errors(
        &file,
        "app(#{ name: \"api\", script: \"app.js\", instances: \"four\" });\n\
         app(#{ name: \"w\", script: \"nope.py\", max_memory_restrat: \"1G\" });\n\
         app(#{ name: \"api\", script: \"app.js\", cron_restart: \"61 * * * *\" });\n",
    );
    assert!(
        text.contains(
            ":1:39: app `api`: instances: expected an integer, \"max\" or -1, found \"four\""
        ),
        "{text}"
    );
    assert!(
        text.contains(
            ":2:38: app `w`: unknown option `max_memory_restrat`: did you mean `max_memory_restart`?"
        ),
        "{text}"
    );
    assert!(text.contains(":2:19: app `w`: script: "), "{text}");
    assert!(text.contains("nope.py does not exist"), "{text}");
    assert!(
        text.contains(":3:1: app `api`: the name is already declared at 1:1"),
        "{text}"
    );
    assert!(
        text.contains(":3:39: app `api`: cron_restart: invalid expression"),
        "{text}"
    );
    assert!(
        text.contains("2 | app(#{ name: \"w\"")
            && text.contains(&format!("\n  | {}^", " ".repeat(37))),
        "the source line is shown: {text}"
    );
}

#[test]
fn durations_and_sizes_take_a_count_or_a_unit_and_say_what_is_wrong() {
    let (_dir, file) = dir();
    let apps = eval(
        &file,
        "app(#{ name: \"a\", script: \"app.js\", kill_timeout: \"2s\", max_memory_restart: 4096 });",
        None,
    )
    .unwrap();
    assert_eq!(apps[0].kill_timeout_ms, 2000);
    assert_eq!(apps[0].options.max_memory_restart_bytes, Some(4096));
    let text = errors(
        &file,
        "app(#{ name: \"a\", script: \"app.js\", kill_timeout: -5 });\n\
         app(#{ name: \"b\", script: \"app.js\", max_memory_restart: true });\n",
    );
    assert!(
        text.contains("kill_timeout: a duration cannot be negative"),
        "{text}"
    );
    assert!(
        text.contains("max_memory_restart: expected a size (\"512M\", \"1G\"), found bool"),
        "{text}"
    );
}

#[test]
fn syntax_errors_point_at_the_place() {
    let (_dir, file) = dir();
    let text = errors(
        &file,
        "let x = 1;\napp(#{ name: \"a\" script: \"app.js\" });\n",
    );
    assert!(text.contains("policies.rhai:2:"), "{text}");
    assert!(text.contains("syntax error"), "{text}");
}

#[test]
fn the_sandbox_stops_endless_loops_and_reaches_nothing_outside() {
    let (_dir, file) = dir();
    let started = std::time::Instant::now();
    let text = errors(&file, "loop {}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped within a second"
    );
    assert!(text.contains("endless loop"), "{text}");
    for outside in [
        r#"eval("1")"#,
        r#"open_file("/etc/passwd")"#,
        r#"import "os" as os;"#,
        r#"let s = "x"; loop { s += s; }"#,
        "fn f(n) { f(n + 1) } f(0);",
    ] {
        assert!(eval(&file, outside, None).is_err(), "{outside} must fail");
    }
}

#[test]
fn the_example_config_is_valid() {
    let file = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policies.rhai"
    ));
    let source = std::fs::read_to_string(file).unwrap();
    let apps = evaluate(
        file,
        &source,
        &EvalOptions {
            env_name: Some("production"),
            vars: vars(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["hello", "hello-worker-0", "hello-worker-1"]);
    assert_eq!(apps[0].env["LOG_LEVEL"], "warn");
    assert_eq!(apps[2].env["PORT"], "9001");
}

/// One config in every form pmx reads. The same apps, options and values.
const AS_RHAI: &str = r#"
app(#{ name: "api", script: "app.js", instances: 4, max_memory_restart: "300M",
       env: #{ PORT: 3000, DEBUG: false }, env_production: #{ NODE_ENV: "production" },
       cron_restart: "0 3 * * *", watch: ["src"], kill_timeout: 3000 });
app(#{ name: "worker", script: "worker.py", args: ["--queue", "jobs"], autorestart: false });
"#;

const AS_JSON: &str = r#"{
  "apps": [
    { "name": "api", "script": "app.js", "instances": 4, "max_memory_restart": "300M",
      "env": { "PORT": 3000, "DEBUG": false }, "env_production": { "NODE_ENV": "production" },
      "cron_restart": "0 3 * * *", "watch": ["src"], "kill_timeout": 3000 },
    { "name": "worker", "script": "worker.py", "args": ["--queue", "jobs"], "autorestart": false }
  ],
  "deploy": { "production": { "user": "ops" } }
}"#;

const AS_YAML: &str = r#"
apps:
  - name: api
    script: app.js
    instances: 4
    max_memory_restart: 300M
    env:
      PORT: 3000
      DEBUG: false
    env_production:
      NODE_ENV: production
    cron_restart: "0 3 * * *"
    watch: [src]
    kill_timeout: 3000
  - name: worker
    script: worker.py
    args: ["--queue", "jobs"]
    autorestart: false
"#;

const AS_TOML: &str = r#"
[[apps]]
name = "api"
script = "app.js"
instances = 4
max_memory_restart = "300M"
cron_restart = "0 3 * * *"
watch = ["src"]
kill_timeout = 3000
env = { PORT = 3000, DEBUG = false }
env_production = { NODE_ENV = "production" }

[[apps]]
name = "worker"
script = "worker.py"
args = ["--queue", "jobs"]
autorestart = false
"#;

const AS_JS: &str = r#"
const port = 3000;
module.exports = {
  apps: [
    { name: "api", script: "app.js", instances: 4, max_memory_restart: "300M",
      env: { PORT: port, DEBUG: false }, env_production: { NODE_ENV: "production" },
      cron_restart: "0 3 * * *", watch: ["src"], kill_timeout: 3000 },
    { name: "worker", script: "worker.py", args: ["--queue", "jobs"], autorestart: false },
  ],
};
"#;

fn node_runs() -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: the .js ecosystem form needs node, which is not installed");
    }
    found
}

#[test]
fn every_ecosystem_form_gives_the_same_apps_as_the_rhai_script() {
    let (dir, file) = dir();
    let expected = eval(&file, AS_RHAI, Some("production")).unwrap();
    assert_eq!(expected[0].env["NODE_ENV"], "production");
    let mut forms = vec![
        ("ecosystem.config.json", AS_JSON),
        ("ecosystem.yml", AS_YAML),
        ("ecosystem.toml", AS_TOML),
    ];
    if node_runs() {
        forms.push(("ecosystem.config.js", AS_JS));
    }
    for (name, text) in forms {
        let path = dir.path().join(name);
        let apps = eval(&path, text, Some("production")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(apps, expected, "{name}");
        // And converted to Rhai, the same again.
        let rhai = to_rhai(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let converted = dir.path().join(format!("{name}.rhai"));
        let again =
            eval(&converted, &rhai, Some("production")).unwrap_or_else(|e| panic!("{e}\n{rhai}"));
        assert_eq!(again, expected, "{name} converted:\n{rhai}");
    }
}

#[test]
fn ecosystem_problems_point_at_the_option_in_the_file() {
    let (dir, _) = dir();
    let json = dir.path().join("ecosystem.json");
    let text = "{\"apps\": [\n {\"name\": \"a\", \"script\": \"app.js\"},\n {\"name\": \"b\",\n  \"script\": \"app.js\",\n  \"instances\": \"four\"}]}";
    let err = eval(&json, text, None).unwrap_err().to_string();
    assert!(
        err.contains("ecosystem.json:5:4: app `b`: instances: expected"),
        "{err}"
    );
    let broken = eval(&json, "{\"apps\": [", None).unwrap_err().to_string();
    assert!(
        broken.contains("ecosystem.json:1:") && broken.contains("invalid JSON"),
        "{broken}"
    );
    // An option pmx does not know is ignored, as PM2 does, and said where it is.
    let yaml = dir.path().join("ecosystem.yaml");
    let source = "apps:\n  - name: a\n    script: app.js\n    max_memory_restrat: 1G\n";
    std::fs::write(&yaml, source).unwrap();
    let opts = EvalOptions {
        env_name: None,
        vars: vars(),
    };
    let config = evaluate_config(&yaml, source, &opts).unwrap();
    assert_eq!(config.apps.len(), 1);
    assert_eq!(config.apps[0].options.max_memory_restart_bytes, None);
    let warned = config.warnings.expect("a warning").to_string();
    assert!(
        warned.contains(
            "ecosystem.yaml:4:5: app `a`: unknown option `max_memory_restrat`: did you mean \
             `max_memory_restart`? (ignored, as PM2 does)"
        ),
        "{warned}"
    );
    // A known option with a wrong value stays an error beside it.
    let both = "apps:\n  - name: a\n    script: app.js\n    colour: red\n    instances: x\n";
    let err = eval(&yaml, both, None).unwrap_err().to_string();
    assert!(
        err.contains("ecosystem.yaml:5:5: app `a`: instances") && !err.contains("colour"),
        "{err}"
    );
    let toml = dir.path().join("ecosystem.toml");
    let err = eval(&toml, "[[apps]]\nname = \"a\"\nscript = 3\n", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ecosystem.toml:3:1: app `a`: script: expected a string"),
        "{err}"
    );
    let none = eval(&json, "{\"deploy\": {}}", None)
        .unwrap_err()
        .to_string();
    assert!(none.contains("expected an `apps` list"), "{none}");
}

#[test]
fn a_js_ecosystem_that_throws_is_reported() {
    if !node_runs() {
        return;
    }
    let (dir, _) = dir();
    let js = dir.path().join("ecosystem.config.js");
    let err = eval(&js, "throw new Error('no config here')", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node could not load the file") && err.contains("no config here"),
        "{err}"
    );
}

#[test]
fn the_starter_config_only_lacks_its_script() {
    let (dir, _) = dir();
    std::fs::remove_file(dir.path().join("app.js")).unwrap();
    let file = dir.path().join("policies.rhai");
    let err = eval(&file, STARTER, None).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert!(err.to_string().contains("app.js does not exist"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Arbitrary text, and mutations of a valid config, never panic or hang the evaluator.
    #[test]
    fn arbitrary_input_never_panics(text in "\\PC{0,200}", cut in 0usize..400, insert in "\\PC{0,8}") {
        let (_dir, file) = dir();
        let _ = evaluate(&file, &text, &EvalOptions { env_name: None, vars: vars() });
        let example = include_str!("../../examples/policies.rhai");
        let mut mutated = example.to_string();
        let at = (cut * mutated.len() / 400).min(mutated.len());
        let at = (0..=at).rev().find(|&i| mutated.is_char_boundary(i)).unwrap_or(0);
        mutated.insert_str(at, &insert);
        let _ = evaluate(&file, &mutated, &EvalOptions { env_name: Some("production"), vars: vars() });
        for name in ["e.yml", "e.toml"] {
            let data = file.with_file_name(name);
            let _ = evaluate(&data, &text, &EvalOptions { env_name: None, vars: vars() });
            let _ = to_rhai(&data, &text);
        }
    }
}

proptest! {
    // Text that is no JSON goes to node, as PM2 reads a .json file: a process per case, so
    // fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Arbitrary text in a .json file never panics or hangs the evaluator.
    #[test]
    fn arbitrary_json_never_panics(text in "\\PC{0,200}") {
        let (_dir, file) = dir();
        let data = file.with_file_name("e.json");
        let _ = evaluate(&data, &text, &EvalOptions { env_name: None, vars: vars() });
        let _ = to_rhai(&data, &text);
    }
}

#[test]
fn a_json_file_that_never_ends_is_reported_as_invalid_json() {
    if !node_runs() {
        return;
    }
    let (dir, _) = dir();
    let started = std::time::Instant::now();
    let err = eval(
        &dir.path().join("e.json"),
        "(() => { for (;;) {} })()",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("invalid JSON"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "node's vm timeout"
    );
}

#[test]
fn a_js_config_that_never_ends_is_an_error_not_a_hang() {
    if !node_runs() {
        return;
    }
    let (dir, _) = dir();
    let js = dir.path().join("ecosystem.config.js");
    let err = eval(&js, "for (;;) {}", None).unwrap_err().to_string();
    assert!(
        err.contains("did not finish reading the file in 10 s"),
        "{err}"
    );
}

#[test]
fn max_memory_restart_takes_a_size_or_a_sustained_and_growth_map() {
    let (_dir, file) = dir();
    let apps = eval(
        &file,
        r#"app(#{ name: "a", script: "app.js", max_memory_restart: "512M" });
           app(#{ name: "b", script: "app.js",
                  max_memory_restart: #{ limit: "100M", over: "30s", growth: "50M/h", window: "5m" } });"#,
        None,
    )
    .unwrap();
    let a = apps[0].options.memory_policy();
    assert_eq!(
        (a.limit, a.sustain_ms, a.growth_per_hour),
        (Some(512 << 20), 0, None)
    );
    let b = apps[1].options.memory_policy();
    assert_eq!(b.limit, Some(100 << 20));
    assert_eq!(b.sustain_ms, 30_000);
    assert_eq!(b.growth_per_hour, Some(50 << 20));
    assert_eq!(b.growth_window_ms, 300_000);
    let err = errors(
        &file,
        r#"app(#{ name: "c", script: "app.js", max_memory_restart: #{ limt: "1G" } });"#,
    );
    assert!(
        err.contains("max_memory_restart: unknown key `limt`"),
        "{err}"
    );
    let err = errors(
        &file,
        r#"app(#{ name: "d", script: "app.js", max_memory_restart: #{ over: "1m" } });"#,
    );
    assert!(err.contains("give a limit"), "{err}");
}

#[test]
fn pm2_aliases_name_the_same_options_and_instances_mean_cluster() {
    let (dir, _) = dir();
    let json = dir.path().join("ecosystem.json");
    let aliased = r#"{"apps": [{"name": "a", "cmd": "app.js", "out": "o.log", "err": "e.log",
        "log": "c.log", "cron": "0 * * * *", "exec_interpreter": "node", "instances": 2}]}"#;
    let plain = r#"{"apps": [{"name": "a", "script": "app.js", "out_file": "o.log",
        "error_file": "e.log", "log_file": "c.log", "cron_restart": "0 * * * *",
        "interpreter": "node", "instances": 2, "exec_mode": "cluster"}]}"#;
    let a = eval(&json, aliased, None).unwrap();
    let b = eval(&json, plain, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a[0].options.exec_mode, "cluster",
        "instances alone: cluster, as PM2"
    );
    let forked =
        r#"{"apps": [{"name": "a", "script": "app.js", "instances": 2, "exec_mode": "fork"}]}"#;
    assert_eq!(
        eval(&json, forked, None).unwrap()[0].options.exec_mode,
        "fork"
    );
    let unmapped =
        r#"{"apps": [{"name": "a", "script": "app.js", "disable_source_map_support": true}]}"#;
    let options = &eval(&json, unmapped, None).unwrap()[0].options;
    assert_eq!(options.source_map_support, Some(false));
    // PM2's `NULL` discards a stream: it stays the word, never a file named NULL in the
    // config's directory.
    let discarded = r#"{"apps": [{"name": "a", "script": "app.js", "out_file": "NULL",
        "error_file": "/dev/null", "log_file": "null"}]}"#;
    let options = &eval(&json, discarded, None).unwrap()[0].options;
    assert_eq!(options.out_file.as_deref(), Some("NULL"));
    assert_eq!(options.error_file.as_deref(), Some("/dev/null"));
    assert_eq!(options.log_file.as_deref(), Some("null"));
}

#[test]
fn env_maps_and_arrays_are_written_as_pm2_writes_them() {
    let (dir, _) = dir();
    let json = dir.path().join("ecosystem.json");
    let text = r#"{"apps": [{"name": "a", "script": "app.js",
        "env": {"OBJ": {"HEYYYY": true}, "LIST": [1, "x"], "N": 3}}]}"#;
    let apps = eval(&json, text, None).unwrap();
    assert_eq!(apps[0].env["OBJ"], r#"{"HEYYYY":true}"#);
    assert_eq!(apps[0].env["LIST"], r#"[1,"x"]"#);
    assert_eq!(apps[0].env["N"], "3");
}

/// PM2 merges `deploy.NAME.env` over `env` with `--env NAME`, and `env_NAME` over both.
#[test]
fn env_name_takes_the_deploy_sections_env_under_env_name() {
    let (dir, _) = dir();
    let json = dir.path().join("ecosystem.json");
    let text = r#"{"apps": [{"name": "a", "script": "app.js",
        "env": {"A": "env", "B": "env", "C": "env"}, "env_production": {"C": "env_production"}}],
        "deploy": {"production": {"user": "ops", "env": {"B": "deploy", "C": "deploy"}}}}"#;
    let env = |name| eval(&json, text, name).unwrap()[0].env.clone();
    let production = env(Some("production"));
    let got: Vec<(&str, &str)> = ["A", "B", "C"]
        .iter()
        .map(|k| (*k, production[*k].as_str()))
        .collect();
    assert_eq!(
        got,
        [("A", "env"), ("B", "deploy"), ("C", "env_production")]
    );
    assert_eq!(
        env(None)["B"],
        "env",
        "without --env the deploy section is not read"
    );
}
