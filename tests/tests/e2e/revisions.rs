//! Changing an app's spec after the fact: `rollback` to an earlier config revision, and
//! `restart --update-env` (which drops variables that are gone). Both are config revisions.

use pmx_tests::Within;
use pmx_tests::{Home, environ, fixture};

fn config(home: &Home, level: &str, extra: &str) -> String {
    let path = home.file("policies.rhai");
    let text = format!(
        r#"app(#{{ name: "api", script: "{}", env: #{{ LOG_LEVEL: "{level}" {extra} }} }});"#,
        fixture("forever.sh")
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn rollback_re_applies_an_earlier_revision_of_the_spec() {
    let home = Home::new();
    home.ok(&["up", &config(&home, "info", "")]);
    home.wait_online("api");
    home.ok(&["up", &config(&home, "debug", "")]);
    let debug = home.wait_online("api");
    assert!(environ(debug).contains(&"LOG_LEVEL=debug".to_string()));

    let dry = home.ok(&["rollback", "api", "--dry-run"]);
    assert!(dry.contains("~ api: env.LOG_LEVEL"), "{dry}");
    assert_eq!(home.pid("api"), debug);
    let out = home.ok(&["rollback", "api"]);
    assert!(out.contains("config revision 3 applied"), "{out}");
    let back = home.wait_online("api");
    assert_ne!(back, debug);
    assert!(environ(back).contains(&"LOG_LEVEL=info".to_string()));
    let history = home.ok(&["history", "all"]);
    assert!(
        history.contains("rollback of api to its spec of revision 1"),
        "{history}"
    );

    home.ok(&["rollback", "api", "--to", "2"]);
    let again = home.wait_online("api");
    assert!(environ(again).contains(&"LOG_LEVEL=debug".to_string()));
    let stderr = home.fails(1, &["rollback", "api", "--to", "0"]);
    assert!(
        stderr.contains("no spec from config revision 0"),
        "{stderr}"
    );
    assert_eq!(home.pid("api"), again, "a refused rollback changes nothing");
}

#[test]
fn update_env_takes_the_new_environment_and_drops_what_is_gone() {
    let home = Home::new();
    let file = config(&home, "info", ", FROM_FILE: \"1\"");
    let up = home
        .command(&["up", &file])
        .env("SHELL_VAR", "old")
        .env("STALE", "x")
        .output_within();
    assert!(up.status.success());
    let first = home.wait_online("api");
    assert!(environ(first).contains(&"STALE=x".to_string()));

    // A plain restart keeps the environment the app started with.
    let plain = home
        .command(&["restart", "api"])
        .env_remove("STALE")
        .output_within();
    assert!(plain.status.success());
    let restarted = home.wait_online("api");
    assert_ne!(restarted, first);
    assert!(environ(restarted).contains(&"STALE=x".to_string()));

    let out = home
        .command(&["restart", "api", "--update-env"])
        .env("SHELL_VAR", "new")
        .env_remove("STALE")
        .output_within();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("env.SHELL_VAR") && stdout.contains("env.STALE"),
        "{stdout}"
    );
    let updated = home.wait_online("api");
    let env = environ(updated);
    assert!(env.contains(&"SHELL_VAR=new".to_string()), "{env:?}");
    // Counted as the restart it is (PM2's restart_time), after the plain one.
    assert_eq!(home.proc("api")["pm2_env"]["restart_time"], 2);
    assert!(!env.iter().any(|v| v.starts_with("STALE=")), "{env:?}");

    // From the file: a variable removed from `env` is removed from the app.
    let file = config(&home, "info", "");
    let out = home.ok(&["restart", &file, "--update-env"]);
    assert!(out.contains("env.FROM_FILE"), "{out}");
    let last = home.wait_online("api");
    assert_ne!(last, updated);
    assert!(!environ(last).iter().any(|v| v.starts_with("FROM_FILE=")));
}
