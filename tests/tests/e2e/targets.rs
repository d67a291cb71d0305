//! Targets as PM2 users type them: a `/regex/` over names, a namespace, a script's path (from
//! the directory the command runs in), and `all` with no app, which is an error.

use pmx_tests::Within;
use pmx_tests::{Home, fixture};

/// The names of the stopped apps, sorted.
fn stopped(home: &Home) -> Vec<String> {
    let mut names: Vec<String> = home
        .in_status("stopped")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_regex_picks_the_names_it_matches() {
    let home = Home::new();
    for name in ["echo-1", "echo-2", "echo-3"] {
        home.ok(&["start", &fixture("forever.sh"), "--name", name]);
    }
    home.ok(&["stop", "/echo-[1,2]/"]);
    assert_eq!(stopped(&home), ["echo-1", "echo-2"]);
    home.ok(&["restart", "/echo-[1,2]/"]);
    home.wait_online("echo-1");
    home.wait_online("echo-2");
    // A pattern that matches nothing is an error, as an unknown name is.
    home.fails(1, &["stop", "/nothing-[0-9]/"]);
    assert!(stopped(&home).is_empty());
}

#[test]
fn a_namespace_picks_its_apps() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "a",
        "--namespace",
        "web",
    ]);
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "b",
        "--namespace",
        "web",
    ]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "c"]);
    home.ok(&["stop", "web"]);
    assert_eq!(stopped(&home), ["a", "b"]);
    assert_eq!(home.status("c"), "online");
}

#[test]
fn a_script_path_picks_the_apps_running_it() {
    let home = Home::new();
    let dir = std::path::Path::new(&fixture("forever.sh"))
        .parent()
        .unwrap()
        .to_path_buf();
    home.ok(&["start", &fixture("forever.sh"), "--name", "gege"]);
    home.ok(&["start", &fixture("ticker.sh"), "--name", "other"]);
    // `pmx stop forever.sh` from the fixtures' directory, as `pm2 stop echo.js`.
    let out = home
        .command(&["stop", "forever.sh"])
        .current_dir(&dir)
        .output_within();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stopped(&home), ["gege"]);
    // From elsewhere the same word names no app.
    home.fails(1, &["stop", "forever.sh"]);
}

#[test]
fn all_with_no_app_is_an_error() {
    let home = Home::new();
    home.ok(&["ping"]);
    for verb in ["restart", "stop", "delete", "reset"] {
        let err = home.fails(1, &[verb, "all"]);
        assert!(err.contains("no app to act on"), "{verb}: {err}");
    }
    home.ok(&["start", &fixture("forever.sh"), "--name", "a"]);
    home.ok(&["stop", "all"]);
    assert_eq!(stopped(&home), ["a"]);
}

/// As PM2: an app may be named with digits; a target is an id first, then a name.
#[test]
fn a_name_of_digits_is_a_name_when_no_id_is_that_number() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "455"]);
    let first = home.wait_online("455");
    home.ok(&["restart", "455"]);
    assert_ne!(home.wait_online("455"), first);
    assert_eq!(home.proc("455")["pm2_env"]["restart_time"], 1);
    home.ok(&["restart", "0"]);
    assert_eq!(
        home.proc("455")["pm2_env"]["restart_time"],
        2,
        "0 is its id"
    );
}
