//! Restart policy: counts, crash loops, autorestart, stop_exit_codes, unexecutable scripts,
//! and status that always comes from the wait on the child.

use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for, zombie_children};

#[test]
fn a_crash_is_restarted_and_counted() {
    let home = Home::new();
    // Runs 1.2 s (stable: min_uptime 300 ms), then exits 1.
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "c",
        "--min-uptime",
        "300ms",
        "--",
        "1",
        "1.2",
    ]);
    let first = home.wait_online("c");
    wait_for("a restart", Duration::from_secs(10), || {
        let p = home.proc("c");
        (p["pm2_env"]["restart_time"].as_u64() >= Some(1)
            && p["pid"] != first
            && p["pm2_env"]["status"] == "online")
            .then_some(())
    });
    assert_eq!(home.proc("c")["pm2_env"]["unstable_restarts"], 0);
}

#[test]
fn a_crash_loop_goes_errored_after_max_restarts() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "loop",
        "--max-restarts",
        "4",
    ]);
    let p = home.wait_status("loop", "errored");
    assert_eq!(p["pm2_env"]["restart_time"], 4);
    assert_eq!(p["pm2_env"]["unstable_restarts"], 4);
    assert_eq!(p["pid"], 0);
    let describe = home.ok(&["describe", "loop"]);
    assert!(describe.contains("4 unstable restarts"), "{describe}");
    // It stays down.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(home.status("loop"), "errored");
    assert_eq!(home.proc("loop")["pm2_env"]["restart_time"], 4);
    // `restart` starts it afresh (a start, not counted, as PM2): the budget is whole again.
    home.ok(&["restart", "loop"]);
    let p = home.wait_status("loop", "errored");
    assert_eq!(p["pm2_env"]["restart_time"], 8);
}

#[test]
fn restart_delay_spaces_restarts() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "slow",
        "--restart-delay",
        "2s",
    ]);
    wait_for("waiting restart", Duration::from_secs(5), || {
        (home.status("slow") == "waiting restart").then_some(())
    });
    // Counted when it restarts, as PM2's restart_time: not while it waits.
    assert_eq!(home.proc("slow")["pm2_env"]["restart_time"], 0);
    home.ok(&["stop", "slow"]);
    assert_eq!(
        home.status("slow"),
        "stopped",
        "a stop cancels the pending restart"
    );
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(home.status("slow"), "stopped");
    assert_eq!(
        home.proc("slow")["pm2_env"]["restart_time"],
        0,
        "a restart cancelled before it happened is not counted"
    );
}

#[test]
fn no_autorestart_leaves_it_stopped() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "once",
        "--no-autorestart",
    ]);
    let p = home.wait_status("once", "stopped");
    assert_eq!(p["pm2_env"]["restart_time"], 0);
    assert_eq!(p["pm2_env"]["exit_code"], 1);
}

#[test]
fn stop_exit_codes_mean_done() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "done",
        "--stop-exit-codes",
        "0,3",
        "--",
        "3",
    ]);
    let p = home.wait_status("done", "stopped");
    assert_eq!(p["pm2_env"]["restart_time"], 0);
    // An exit code not in the list is a crash.
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "other",
        "--stop-exit-codes",
        "0",
        "--max-restarts",
        "1",
        "--",
        "5",
    ]);
    let p = home.wait_status("other", "errored");
    assert_eq!(p["pm2_env"]["restart_time"], 1);
}

#[test]
fn unexecutable_scripts_end_errored_with_the_reason() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("not_executable.sh"),
        "--name",
        "noexec",
        "--interpreter",
        "none",
    ]);
    home.wait_status("noexec", "errored");
    let describe = home.ok(&["describe", "noexec"]);
    assert!(describe.contains("ermission denied"), "{describe}");
    home.ok(&["start", &fixture("bad_shebang"), "--name", "shebang"]);
    home.wait_status("shebang", "errored");
    let describe = home.ok(&["describe", "shebang"]);
    assert!(describe.contains("No such file"), "{describe}");
    assert_eq!(
        home.proc("shebang")["pm2_env"]["restart_time"],
        0,
        "no silent loop"
    );
}

#[test]
fn list_never_shows_online_for_a_dead_process() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "victim",
        "--restart-delay",
        "1s",
    ]);
    let pid = home.wait_online("victim");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_for("exit noticed", Duration::from_secs(5), || {
        let p = home.proc("victim");
        (p["pid"] != pid).then_some(())
    });
    let p = home.proc("victim");
    assert_ne!(
        p["pm2_env"]["status"], "online",
        "online with a dead pid: {p}"
    );
    assert_eq!(p["pm2_env"]["status"], "waiting restart");
    let pid2 = home.wait_online("victim");
    assert!(alive(pid2));
    let daemon = home.daemon_pid().unwrap();
    assert!(
        zombie_children(daemon).is_empty(),
        "zombies left: {:?}",
        zombie_children(daemon)
    );
}

#[test]
fn cwd_interpreter_args_and_backoff_flags_take_effect() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "shaped",
        "--cwd",
        home.path().to_str().unwrap(),
        "--interpreter",
        "bash",
        "--interpreter-args",
        "-e -o errtrace",
    ]);
    let pid = home.wait_online("shaped");
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, home.path());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(argv[0].ends_with("bash"), "{argv:?}");
    assert_eq!(argv[1..], ["-e", "-o", "errtrace", &fixture("forever.sh")]);

    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "backoff",
        "--exp-backoff-restart-delay",
        "100ms",
        "--max-restarts",
        "3",
    ]);
    home.wait_status("backoff", "errored");
    let delays: Vec<u64> = home
        .history("backoff")
        .iter()
        .filter(|e| e["kind"]["reason"]["reason"] == "crashed")
        .map(|e| e["kind"]["reason"]["delay_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(
        delays,
        [100, 150, 225],
        "backoff grows ×1.5 per unstable restart"
    );
}
