//! Fault injection: what the machine does to the daemon (a full disk, descriptors running
//! out, another user, hostile clients, `kill -9` at a bad moment) never takes the apps down.

use std::path::Path;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for, wait_gone};

/// Free bytes on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs");
    st.f_bavail as u64 * st.f_frsize as u64
}

fn restarts(home: &Home, name: &str) -> u64 {
    home.proc(name)["pm2_env"]["restart_time"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_full_disk_degrades_the_journal_and_every_app_stays_up() {
    let home = Home::on_tmpfs("16m");
    let long_line = "x".repeat(200);
    home.ok(&[
        "start",
        &format!("while true; do echo {long_line}; done"),
        "--name",
        "flood",
    ]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "steady"]);
    // Crashes every 300 ms for as long as the test runs: asynchronous events all along.
    home.ok(&[
        "start",
        "sh -c 'sleep 0.3; exit 1'",
        "--name",
        "crash",
        "--min-uptime",
        "0",
        "--max-restarts",
        "100000",
    ]);
    let steady = home.wait_online("steady");
    let flood = home.wait_online("flood");
    wait_for("the disk to fill", Duration::from_secs(60), || {
        (free_bytes(&home.path()) < 64 * 1024).then_some(())
    });
    // Events keep coming while nothing can be written.
    let before = restarts(&home, "crash");
    wait_for(
        "crash restarts on a full disk",
        Duration::from_secs(20),
        || (restarts(&home, "crash") >= before + 5).then_some(()),
    );
    let daemon = home.daemon_pid().expect("daemon pid");
    assert!(alive(daemon), "the daemon died of a full disk");
    assert!(alive(steady) && alive(flood), "an app died of a full disk");
    home.ok(&["ping"]);
    // The app filling the disk can be stopped.
    home.ok(&["stop", "flood"]);
    wait_gone(flood);
    let held = home.history("crash").len();
    assert!(held > 0, "history answers on a full disk");

    // Space comes back: the journal writes what it held and says so.
    for entry in std::fs::read_dir(home.path().join("logs")).expect("logs") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("flood"))
        {
            std::fs::remove_file(path).expect("free space");
        }
    }
    let resumed = wait_for("the journal to resume", Duration::from_secs(20), || {
        home.history("all")
            .into_iter()
            .find(|e| e["kind"]["type"] == "journal_resumed")
    });
    assert!(
        resumed["kind"]["kept"].as_u64().unwrap_or(0) > 0,
        "no held event was written: {resumed}"
    );
    assert_eq!(resumed["kind"]["lost"], 0, "{resumed}");
    home.ok(&["kill"]);
    home.wait_daemon_exit();
    // A new daemon reads it all back: the stop, and the clean exit.
    let flood_events = home.history("flood");
    assert!(
        flood_events
            .iter()
            .any(|e| e["kind"]["type"] == "command" && e["kind"]["verb"] == "stop"),
        "the stop made on a full disk is in the journal"
    );
    assert!(
        home.history("all")
            .iter()
            .any(|e| e["kind"]["type"] == "daemon_stopped"),
        "the clean kill is journaled"
    );
    assert_eq!(home.status("flood"), "stopped");
}
