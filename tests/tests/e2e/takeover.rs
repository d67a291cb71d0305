//! After the daemon dies without stopping its apps (SIGKILL, OOM), the next daemon stops what
//! the old one left running, then starts fresh copies: never two copies of one instance, no
//! orphan left behind.

use std::time::Duration;

use pmx_tests::{Home, alive, fixture, read_pid, wait_for, wait_gone};

/// Starts `esc`, an app whose child escapes into its own session; returns the app's pid and
/// the escaped child's.
fn start_escaper(home: &Home, extra: &[&str]) -> (u32, u32) {
    let pid_file = home.file("esc.pid");
    let (script, env) = (fixture("double_fork.py"), format!("PID_FILE={pid_file}"));
    let mut args = vec!["start", &script, "--name", "esc", "--env", &env];
    args.extend_from_slice(extra);
    home.ok(&args);
    let app = home.wait_online("esc");
    let escaped = read_pid(&pid_file);
    std::fs::remove_file(&pid_file).unwrap();
    (app, escaped)
}

#[test]
fn the_next_daemon_stops_the_orphans_before_starting_fresh_copies() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "plain"]);
    let (esc, escaped) = start_escaper(&home, &["--kill-timeout", "500ms"]);
    let plain = home.wait_online("plain");

    home.kill_daemon();
    assert!(
        alive(plain) && alive(esc) && alive(escaped),
        "apps outlive a SIGKILLed daemon"
    );

    home.ok(&["ping"]);
    let plain2 = home.wait_online("plain");
    let esc2 = home.wait_online("esc");
    assert!(
        !alive(plain) && !alive(esc),
        "the old processes were stopped"
    );
    wait_gone(escaped);
    assert!(plain2 != plain && esc2 != esc);
    assert_eq!(
        home.processes_of("forever.sh"),
        vec![plain2],
        "exactly one copy of plain"
    );
    let history = home.history("esc");
    let stopped = history
        .iter()
        .find(|e| e["kind"]["type"] == "orphan_stopped")
        .expect("journaled");
    assert_eq!(stopped["kind"]["pid"], esc);
    assert_eq!(stopped["cause"]["by"], "boot");
    // The fresh copy's escaped descendant is tracked like any other.
    let escaped2 = read_pid(&home.file("esc.pid"));
    home.ok(&["stop", "esc"]);
    wait_gone(escaped2);
}

#[test]
fn a_stopped_app_stays_stopped_and_unrelated_processes_are_untouched() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "down"]);
    home.wait_online("down");
    home.ok(&["stop", "down"]);
    // A process pmx did not start, with the same command line.
    let mut stranger = std::process::Command::new(fixture("forever.sh"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    home.kill_daemon();
    home.ok(&["ping"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(home.status("down"), "stopped");
    assert!(
        alive(stranger.id()),
        "pmx touched a process it did not start"
    );
    stranger.kill().unwrap();
    pmx_tests::wait_within(&mut stranger, "the stranger");
}

/// SIGKILL the daemon at random moments while an app crash-loops and commands run; every
/// round the journal opens, nothing runs twice, nothing is orphaned, and `list` matches /proc.
#[test]
fn repeated_daemon_crashes_never_leave_two_copies() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "steady"]);
    // Crashes every 50 ms and is restarted at once: spawns keep happening.
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "flappy",
        "--max-restarts",
        "100000",
        "--",
        "1",
        "0.05",
    ]);
    let mut seed = std::process::id() as u64;
    let mut acknowledged = 0;
    for round in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = 20 + (seed >> 33) % 200;
        if round % 3 == 0 {
            home.ok(&["restart", "steady"]);
            acknowledged += 1;
        }
        std::thread::sleep(Duration::from_millis(delay));
        home.kill_daemon();
        home.ok(&["ping"]);
        let steady = home.wait_online("steady");
        let copies = wait_for("one copy of steady", Duration::from_secs(10), || {
            let copies = home.processes_of("forever.sh");
            (copies.len() == 1).then_some(copies)
        });
        assert_eq!(
            copies,
            vec![steady],
            "round {round}: list and /proc disagree"
        );
        let flappy = home.processes_of("crash.sh");
        assert!(
            flappy.len() <= 1,
            "round {round}: two copies of flappy: {flappy:?}"
        );
    }
    let restarts = home
        .history("steady")
        .iter()
        .filter(|e| e["kind"]["verb"] == "restart")
        .count();
    assert_eq!(restarts, acknowledged, "an acknowledged command was lost");
    home.ok(&["stop", "all"]);
    assert!(
        home.processes_of("fixtures").is_empty(),
        "orphans left: {:?}",
        home.processes_of("fixtures")
    );
}

/// The harness: a `Home` dropped after its daemon was SIGKILLed (no daemon to stop them)
/// ends the apps that outlived it, and what they spawned.
#[test]
fn a_dropped_home_ends_the_apps_a_sigkilled_daemon_left() {
    let home = Home::new();
    let (app, escaped) = start_escaper(&home, &[]);
    home.kill_daemon();
    assert!(
        alive(app) && alive(escaped),
        "apps outlive a SIGKILLed daemon"
    );
    drop(home);
    wait_gone(app);
    wait_gone(escaped);
}

/// The journal stores the environment the CLI captured once for all the apps started from
/// it (format 2); the daemon that replays the journal after a crash starts both apps with it.
#[test]
fn fresh_copies_after_a_crash_keep_the_environment_they_were_started_with() {
    use pmx_tests::Within;
    let home = Home::new();
    for name in ["left", "right"] {
        let out = home
            .command(&["start", &fixture("forever.sh"), "--name", name])
            .env("PMX_TEST_SHELL_MARK", "from-the-shell")
            .output_within();
        assert!(out.status.success(), "{out:?}");
    }
    let before = [home.wait_online("left"), home.wait_online("right")];
    home.kill_daemon();
    home.ok(&["ping"]);
    for (name, old) in ["left", "right"].into_iter().zip(before) {
        let pid = home.wait_online(name);
        assert_ne!(pid, old, "{name} is a fresh copy");
        let environ = pmx_tests::environ(pid);
        assert!(
            environ.contains(&"PMX_TEST_SHELL_MARK=from-the-shell".to_string()),
            "{name}: {environ:?}"
        );
    }
}
