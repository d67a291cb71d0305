//! `depends_on`: start order with readiness gates, cycles as config errors with their place,
//! and `stop` of an app a running app depends on refused unless forced.

use pmx_tests::{Home, fixture, free_port};
use serde_json::Value;

fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.file(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// When `app` first went online (journal time).
fn online_at(home: &Home, app: &str) -> u64 {
    home.history(app)
        .iter()
        .find(|e| e["kind"]["type"] == "transition" && e["kind"]["to"] == "online")
        .and_then(|e| e["at"].as_u64())
        .unwrap_or_else(|| panic!("{app} never went online"))
}

fn first_spawn_at(home: &Home, app: &str) -> u64 {
    home.history(app)
        .iter()
        .find(|e: &&Value| e["kind"]["type"] == "spawned")
        .and_then(|e| e["at"].as_u64())
        .unwrap_or_else(|| panic!("{app} never spawned"))
}

#[test]
fn an_app_starts_once_the_app_it_depends_on_is_ready_and_guards_its_stop() {
    let home = Home::new();
    let port = free_port();
    let config = write(
        &home,
        "stack.rhai",
        &format!(
            r#"
            app(#{{ name: "api", script: "{forever}",
                   depends_on: [#{{ app: "db", condition: "ready" }}] }});
            app(#{{ name: "db", script: "{server}", listen: {port}, wait_ready: true,
                   env: #{{ READY_AFTER_MS: "700" }} }});
            "#,
            forever = fixture("forever.sh"),
            server = fixture("fd_server.py"),
        ),
    );
    home.ok(&["up", &config]);
    let ready = online_at(&home, "db");
    let spawned = first_spawn_at(&home, "api");
    assert!(
        spawned >= ready,
        "api spawned at {spawned}, before db was ready at {ready}"
    );
    assert_eq!(home.status("api"), "online");

    let refused = home.fails(1, &["stop", "db"]);
    assert!(
        refused.contains("`api` depends on `db`") && refused.contains("--force"),
        "{refused}"
    );
    assert_eq!(home.status("db"), "online", "nothing was stopped");
    home.ok(&["stop", "api", "db"]);
    home.ok(&["restart", "db"]);
    home.ok(&["stop", "db", "--force"]);
    assert_eq!(home.status("db"), "stopped");
}

#[test]
fn a_dependency_cycle_is_a_config_error_at_its_place() {
    let home = Home::new();
    let config = write(
        &home,
        "cycle.rhai",
        &format!(
            "app(#{{ name: \"a\", script: \"{f}\", depends_on: \"b\" }});\n\
             app(#{{ name: \"b\", script: \"{f}\",\n      depends_on: [\"a\"] }});\n",
            f = fixture("forever.sh")
        ),
    );
    let err = home.fails(2, &["up", &config]);
    assert!(err.contains("depends_on has a cycle: a → b → a"), "{err}");
    assert!(
        err.contains("cycle.rhai:1:"),
        "placed at a's depends_on: {err}"
    );
    assert!(home.jlist().is_empty(), "nothing started");
}
