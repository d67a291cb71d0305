//! `pmx up FILE`: converge to a Rhai config; twice in a row changes nothing; `--env`; a
//! change restarts only that app (same ids); `--prune`; a broken config changes nothing.

use pmx_tests::{Home, alive, fixture};

fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.file(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `api` (2 instances, LOG_LEVEL from env / env_production) and `worker`.
fn config(level: &str) -> String {
    format!(
        r#"
        app(#{{ name: "api", script: "{forever}", instances: 2,
               env: #{{ LOG_LEVEL: "{level}" }}, env_production: #{{ LOG_LEVEL: "warn" }} }});
        app(#{{ name: "worker", script: "{forever}" }});
        "#,
        forever = fixture("forever.sh")
    )
}

fn environ(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .replace('\0', "\n")
}

#[test]
fn up_twice_restarts_nothing_and_a_change_restarts_only_that_app() {
    let home = Home::new();
    let file = write(&home, "policies.rhai", &config("info"));
    let only = home.ok(&["up", &file, "--only", "worker", "--dry-run"]);
    // The first command started the daemon, and says so first.
    let mut lines = only.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("[PMX] started the daemon in"),
        "{only}"
    );
    assert_eq!(lines.next(), Some("+ worker"), "--only: {only}");
    assert!(!only.contains("api"), "--only: {only}");
    let stderr = home.fails(2, &["up", &file, "--only", "nobody"]);
    assert!(stderr.contains("declares no app `nobody`"), "{stderr}");
    let dry = home.ok(&["up", &file, "--dry-run"]);
    assert!(
        dry.contains("+ api (2 instances)") && dry.contains("+ worker"),
        "{dry}"
    );
    assert!(home.jlist().is_empty(), "a dry run starts nothing");
    let first = home.ok(&["up", &file]);
    assert!(first.contains("config revision 1 applied"), "{first}");
    let worker = home.wait_online("worker");
    let api = home.wait_online("api");
    assert!(environ(api).contains("LOG_LEVEL=info"));

    let again = home.ok(&["up", &file]);
    assert!(
        again.contains("= api") && again.contains("= worker"),
        "{again}"
    );
    assert_eq!(home.pid("worker"), worker, "unchanged apps are left alone");
    assert_eq!(home.pid("api"), api);

    let changed = home.ok(&["up", &file, "--env", "production"]);
    assert!(changed.contains("~ api: env.LOG_LEVEL"), "{changed}");
    let new_api = home.wait_online("api");
    assert_ne!(new_api, api, "the changed app restarted");
    assert!(!alive(api));
    assert!(
        environ(new_api).contains("LOG_LEVEL=warn"),
        "--env production"
    );
    assert_eq!(home.pid("worker"), worker, "the other app was not touched");
    let ids: Vec<u64> = home
        .jlist()
        .iter()
        .filter(|p| p["name"] == "api")
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![0, 1], "a changed app keeps its ids");
    let history = home.ok(&["history", "api"]);
    assert!(
        history.contains("config revision 3: ~ api: env.LOG_LEVEL"),
        "the history shows which change came before the restart: {history}"
    );
}

#[test]
fn prune_removes_apps_no_longer_declared() {
    let home = Home::new();
    let file = write(&home, "policies.rhai", &config("info"));
    home.ok(&["up", &file]);
    let worker = home.wait_online("worker");
    let only_api = format!(
        r#"app(#{{ name: "api", script: "{}", instances: 2, env: #{{ LOG_LEVEL: "info" }},
               env_production: #{{ LOG_LEVEL: "warn" }} }});"#,
        fixture("forever.sh")
    );
    let smaller = write(&home, "smaller.rhai", &only_api);
    let kept = home.ok(&["up", &smaller]);
    assert!(
        !kept.contains("- worker"),
        "no prune without --prune: {kept}"
    );
    assert!(alive(worker));
    let pruned = home.ok(&["up", &smaller, "--prune"]);
    assert!(
        pruned.contains("- worker") && pruned.contains("= api"),
        "{pruned}"
    );
    assert!(!alive(worker));
    assert!(home.jlist().iter().all(|p| p["name"] != "worker"));
}

#[test]
fn a_broken_config_changes_nothing_and_says_where() {
    let home = Home::new();
    let file = write(&home, "policies.rhai", &config("info"));
    home.ok(&["up", &file]);
    let api = home.wait_online("api");
    let broken = write(
        &home,
        "broken.rhai",
        "app(#{ name: \"api\", script: \"missing.js\", instances: \"four\" });\nloop {}\n",
    );
    let stderr = home.fails(2, &["up", &broken]);
    assert!(stderr.contains("broken.rhai:2:"), "{stderr}");
    assert!(stderr.contains("(an endless loop?)"), "{stderr}");
    let bad_values = write(
        &home,
        "bad.rhai",
        "app(#{ name: \"api\", script: \"missing.js\", instances: \"four\", max_memory_restrat: 1 });\n",
    );
    let stderr = home.fails(2, &["up", &bad_values]);
    for expected in [
        "bad.rhai:1:43: app `api`: instances: expected an integer, \"max\" or -1, found \"four\"",
        "did you mean `max_memory_restart`?",
        "missing.js does not exist",
        "nothing was changed",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert_eq!(home.pid("api"), api, "running apps keep running");
    let all = home.ok(&["history", "all"]);
    assert!(all.contains("bad.rhai rejected, nothing changed"), "{all}");
}

#[test]
fn start_takes_a_config_file_too() {
    let home = Home::new();
    let file = write(&home, "policies.rhai", &config("info"));
    let out = home.ok(&["start", &file, "--env", "production"]);
    assert!(out.contains("+ api (2 instances)"), "{out}");
    let api = home.wait_online("api");
    assert!(environ(api).contains("LOG_LEVEL=warn"));
}
