//! PM2 command lines as PM2 users type them: `start SCRIPT -f` adds an instance (a second
//! `start SCRIPT` without it is refused), PM2's flag aliases and the PM2.io flags pmx has
//! nothing to do for, and `restart_time` counted when a restart happens.

use std::time::Duration;

use pmx_tests::{Home, fixture, wait_for};

fn restarts(home: &Home, name: &str) -> u64 {
    home.proc(name)["pm2_env"]["restart_time"].as_u64().unwrap()
}

#[test]
fn start_force_adds_an_instance_and_a_second_start_is_refused_without_it() {
    let home = Home::new();
    let script = fixture("forever.sh");
    home.ok(&["start", &script, "--name", "echo"]);
    let err = home.fails(1, &["start", &script, "--name", "echo"]);
    assert!(err.contains("already exists"), "{err}");
    home.ok(&["start", &script, "--name", "echo", "-f"]);
    home.ok(&["start", &script, "--name", "echo", "--force"]);
    let ids: Vec<u64> = home
        .jlist()
        .iter()
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2]);
    wait_for("every instance online", Duration::from_secs(10), || {
        home.jlist()
            .iter()
            .all(|p| p["pm2_env"]["status"] == "online")
            .then_some(())
    });
    home.ok(&["stop", "1"]);
    let stopped: Vec<u64> = home
        .jlist()
        .iter()
        .filter(|p| p["pm2_env"]["status"] == "stopped")
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(stopped, [1]);
}

#[test]
fn pm2_flag_spellings_are_understood_and_pm2_io_flags_change_nothing() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "a",
        "-c",
        "0 0 * * *",
        "--disable-logs",
        "-x",
        "--no-pmx",
        "--no-automation",
        "--no-vizion",
        "--trace",
        "--deep-monitoring",
        "--shutdown-with-message",
    ]);
    home.wait_online("a");
    let env = &home.proc("a")["pm2_env"];
    assert_eq!(env["cron_restart"], "0 0 * * *", "{env}");
    assert_eq!(env["pm_out_log_path"], "/dev/null", "{env}");
    assert_eq!(env["pm_err_log_path"], "/dev/null", "{env}");
    assert_eq!(env["shutdown_with_message"], true, "{env}");
    assert_eq!(env["watch"], false, "{env}");
    assert_eq!(env["namespace"], "default", "{env}");
    // -i below zero is every core but that many, never fewer than one, as PM2 clamps it.
    home.ok(&["start", &fixture("forever.sh"), "--name", "b", "-i", "-100"]);
    assert_eq!(home.jlist().len(), 2);
}

#[test]
fn a_crash_counts_as_a_restart_once_the_restart_happens() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "c",
        "--restart-delay",
        "3000",
    ]);
    wait_for("waiting restart", Duration::from_secs(10), || {
        (home.status("c") == "waiting restart").then_some(())
    });
    assert_eq!(restarts(&home, "c"), 0, "the restart has not happened yet");
    wait_for("the delayed restart", Duration::from_secs(10), || {
        (restarts(&home, "c") >= 1).then_some(())
    });
}
