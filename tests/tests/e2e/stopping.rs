//! Graceful stop, SIGKILL escalation, and no orphan left: grandchildren, and descendants that
//! left the process group with setsid and a double fork.

use std::time::Duration;

use pmx_tests::{Home, alive, fixture, read_pid, wait_for, wait_gone, zombie_children};

#[test]
fn an_app_ignoring_sigint_is_killed_after_kill_timeout() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("ignore_sigint.py"),
        "--name",
        "stubborn",
        "--kill-timeout",
        "500ms",
    ]);
    let pid = home.wait_online("stubborn");
    home.wait_output("stubborn", "ignoring");
    home.ok(&["stop", "stubborn"]);
    assert!(!alive(pid));
    let history = home.history("stubborn");
    let signals: Vec<i64> = history
        .iter()
        .filter(|e| e["kind"]["type"] == "signalled")
        .map(|e| e["kind"]["signal"].as_i64().unwrap())
        .collect();
    assert_eq!(signals, [2, 9], "SIGINT, then SIGKILL after kill_timeout");
    let exited = history
        .iter()
        .rfind(|e| e["kind"]["type"] == "exited")
        .unwrap();
    assert_eq!(exited["kind"]["exit"]["signal"], 9);
}

#[test]
fn kill_signal_is_configurable() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "term",
        "--kill-signal",
        "SIGTERM",
    ]);
    home.wait_online("term");
    home.ok(&["stop", "term"]);
    let history = home.history("term");
    let signalled = history
        .iter()
        .find(|e| e["kind"]["type"] == "signalled")
        .unwrap();
    assert_eq!(signalled["kind"]["signal"], 15);
}

#[test]
fn a_grandchild_dies_on_stop() {
    let home = Home::new();
    let pid_file = home.file("grandchild.pid");
    home.ok(&[
        "start",
        &fixture("grandchild.sh"),
        "--name",
        "gc",
        "--env",
        &format!("PID_FILE={pid_file}"),
    ]);
    home.wait_online("gc");
    let grandchild = read_pid(&pid_file);
    assert!(alive(grandchild));
    home.ok(&["stop", "gc"]);
    wait_gone(grandchild);
}

/// The descendant's session id, from /proc.
fn session_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn start_double_fork(home: &Home, name: &str) -> (u32, u32) {
    let pid_file = home.file(&format!("{name}.pid"));
    home.ok(&[
        "start",
        &fixture("double_fork.py"),
        "--name",
        name,
        "--env",
        &format!("PID_FILE={pid_file}"),
        "--kill-timeout",
        "500ms",
    ]);
    let app = home.wait_online(name);
    let escaped = read_pid(&pid_file);
    assert!(alive(escaped));
    assert_ne!(
        session_of(escaped),
        session_of(app),
        "the fixture left the app's session"
    );
    (app, escaped)
}

#[test]
fn a_setsid_double_forked_descendant_dies_on_stop_restart_and_delete() {
    let home = Home::new();
    let (_, escaped) = start_double_fork(&home, "df");
    home.ok(&["stop", "df"]);
    wait_gone(escaped);

    std::fs::remove_file(home.file("df.pid")).unwrap();
    home.ok(&["restart", "df"]);
    home.wait_online("df");
    let escaped = read_pid(&home.file("df.pid"));
    std::fs::remove_file(home.file("df.pid")).unwrap();
    home.ok(&["restart", "df"]);
    wait_gone(escaped);
    let escaped = read_pid(&home.file("df.pid"));

    home.ok(&["delete", "df"]);
    wait_gone(escaped);
    let daemon = home.daemon_pid().unwrap();
    wait_for("orphans reaped", Duration::from_secs(10), || {
        zombie_children(daemon).is_empty().then_some(())
    });
}

#[test]
fn a_descendant_left_behind_by_a_crash_is_cleaned_up() {
    let home = Home::new();
    let (app, escaped) = start_double_fork(&home, "crashy");
    unsafe { libc::kill(app as i32, libc::SIGKILL) };
    // The escaped process ignores SIGINT: it gets SIGKILL after kill_timeout.
    wait_gone(escaped);
    home.wait_online("crashy");
}

#[test]
fn stops_run_in_parallel_across_apps() {
    let home = Home::new();
    for name in ["s1", "s2", "s3"] {
        home.ok(&[
            "start",
            &fixture("ignore_sigint.py"),
            "--name",
            name,
            "--kill-timeout",
            "1s",
        ]);
    }
    let pids: Vec<u32> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| home.wait_online(n))
        .collect();
    for name in ["s1", "s2", "s3"] {
        home.wait_output(name, "ignoring");
    }
    home.ok(&["delete", "all"]);
    for pid in pids {
        assert!(!alive(pid));
    }
    // Three 1 s kill timeouts in parallel, not in sequence: every SIGKILL lands within 1.5 s
    // of the first SIGINT, by the journal's clock.
    let events = home.history("all");
    let at = |signal: i64| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["kind"]["type"] == "signalled" && e["kind"]["signal"] == signal)
            .map(|e| e["at"].as_u64().unwrap())
            .collect()
    };
    let first_int = *at(2).iter().min().unwrap();
    let last_kill = *at(9).iter().max().unwrap();
    assert!(
        last_kill - first_int < 1500,
        "stops ran one after another: {} ms",
        last_kill - first_int
    );
}

/// Regression: the SIGKILL for stragglers ran on a detached timer that died with the daemon,
/// so an escaped descendant ignoring SIGINT outlived `pmx kill`.
#[test]
fn kill_does_not_leave_escaped_descendants_behind() {
    let home = Home::new();
    let (_, escaped) = start_double_fork(&home, "esc");
    home.ok(&["kill"]);
    assert!(
        !alive(escaped),
        "pmx kill returned while a descendant still ran"
    );
}
