//! Fault injection: what the machine does to the daemon (a full disk, descriptors running
//! out, another user, hostile clients, `kill -9` at a bad moment) never takes the apps down.

use pmx_tests::Within;
use std::path::Path;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for, wait_gone};

/// A `pmx` command left running past its test would start a daemon again: ended on drop.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.end();
    }
}

/// Runs its closure when dropped, test failure or not.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Free bytes on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs");
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Starts `script` as the app `crash`, restarted however often and quickly it crashes;
/// `after`: more arguments (`--` and the script's).
fn crash_loop(home: &Home, script: &str, after: &[&str]) {
    let mut args = vec![
        "start",
        script,
        "--name",
        "crash",
        "--min-uptime",
        "0",
        "--max-restarts",
        "1000000",
    ];
    args.extend(after);
    home.ok(&args);
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
    // A Node app (several threads) too, as users run.
    home.ok(&["start", &fixture("threads.js"), "--name", "node"]);
    // Crashes every 300 ms for as long as the test runs: asynchronous events all along.
    crash_loop(&home, "sh -c 'sleep 0.3; exit 1'", &[]);
    let steady = home.wait_online("steady");
    let node = home.wait_online("node");
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
    assert!(
        alive(steady) && alive(flood) && alive(node),
        "an app died of a full disk"
    );
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
    home.stop_daemon();
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
        "the clean stop is journaled"
    );
    assert_eq!(home.status("flood"), "stopped");
}

/// Runs `pmx ARGS` in `home` and returns (exit code, stderr).
fn run_in(home: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(pmx_tests::pmx_bin())
        .args(args)
        .env("PMX_HOME", home)
        .output_within();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_home_someone_else_could_write_to_is_refused_and_nothing_is_written() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let outside = tempfile::tempdir().expect("dir");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").expect("victim");
    let parent = tempfile::Builder::new()
        .prefix("pmx")
        .tempdir_in("/tmp")
        .expect("dir");
    let home = parent.path().join("h");
    let make = |mode: u32| {
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir(&home).expect("home");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };

    // Planted links: the pid file and the Node preload the daemon would run apps with.
    make(0o700);
    symlink(&victim, home.join("pmx.pid")).expect("link");
    symlink(&victim, home.join("node-shim.cjs")).expect("link");
    let (code, err) = run_in(&home, &["ping"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pmx.pid") && err.contains("symlink"), "{err}");
    let (code, err) = run_in(&home, &["daemon"]);
    assert_eq!(code, Some(2), "pmx daemon: {err}");

    // A home another user owns, or that others may write to.
    make(0o700);
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).expect("chown");
    let (code, err) = run_in(&home, &["ping"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("owned by uid 65534"), "{err}");
    make(0o777);
    let (code, err) = run_in(&home, &["start", &fixture("forever.sh")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("writable"), "{err}");
    // A file in it another user owns.
    make(0o700);
    std::fs::write(home.join("daemon.toml"), "").expect("toml");
    std::os::unix::fs::chown(home.join("daemon.toml"), Some(65534), None).expect("chown");
    let (code, err) = run_in(&home, &["daemon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("daemon.toml"), "{err}");

    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "untouched"
    );
    let entries: Vec<_> = std::fs::read_dir(&home)
        .expect("home")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries,
        ["daemon.toml"],
        "nothing written in a refused home"
    );
}

#[test]
fn the_cli_sends_nothing_to_a_socket_another_user_serves() {
    let dir = tempfile::Builder::new()
        .prefix("pmx")
        .tempdir_in("/tmp")
        .expect("dir");
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).expect("chown");
    let socket = dir.path().join("pmx.sock");
    let received = dir.path().join("received");
    // A listener run by `nobody` at the socket path, recording what it is sent.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(2)
data = b""
try:
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        data += chunk
except Exception: pass
open(sys.argv[2], "wb").write(data)
"#;
    let mut listener = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(&socket)
        .arg(&received)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    assert_eq!(pmx_tests::first_line(&mut listener).trim(), "listening");
    let out = std::process::Command::new(pmx_tests::pmx_bin())
        .args(["ping"])
        .env("PMX_HOME", dir.path())
        .env("SECRET_OF_ROOT", "do-not-send")
        .output_within();
    pmx_tests::wait_within(&mut listener, "the listener");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("served by uid 65534"), "{err}");
    let sent = std::fs::read(&received).unwrap_or_default();
    assert!(sent.is_empty(), "the CLI sent {} bytes", sent.len());
}

#[test]
fn every_file_of_a_crash_loop_with_rotation_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let out_dir = tempfile::tempdir().expect("dir");
    let out = out_dir.path().join("app-out.log");
    let err = out_dir.path().join("app-err.log");
    // The daemon starts with the usual umask 022; files must still come out 0600.
    let mut start = home.command(&[
        "start",
        "sh -c 'for i in $(seq 40); do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; echo e-$i >&2; done; exit 1'",
        "--name",
        "loop",
        "--min-uptime",
        "0",
        "--max-restarts",
        "100000",
        "-o",
        out.to_str().expect("path"),
        "-e",
        err.to_str().expect("path"),
    ]);
    start.env("PMX_LOG_MAX_SIZE", "1K");
    // SAFETY: umask in the child before exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        start.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    assert!(start.output_within().status.success());
    home.ok(&["start", &fixture("forever.sh"), "--name", "other"]);
    wait_for("rotated files", Duration::from_secs(20), || {
        let n = std::fs::read_dir(out_dir.path()).ok()?.count();
        (n >= 12).then_some(())
    });
    home.ok(&["stop", "loop"]);
    let mut files = Vec::new();
    for dir in [out_dir.path().to_path_buf(), home.path().join("logs")] {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let entry = entry.expect("entry");
            let mode = entry.metadata().expect("meta").permissions().mode() & 0o777;
            files.push((entry.path(), mode));
        }
    }
    assert!(files.len() >= 12, "{files:?}");
    let open: Vec<_> = files.iter().filter(|(_, mode)| *mode != 0o600).collect();
    assert!(open.is_empty(), "not 0600: {open:?}");
    for name in ["pmx.pid", "node-shim.cjs"] {
        let mode = std::fs::metadata(home.path().join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    // Apps get the user's umask, not the daemon's.
    let pid = home.wait_online("other");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.contains("Umask:\t0022"), "{status}");
}

#[test]
fn idle_connection_floods_under_a_low_descriptor_limit_never_stop_a_restart() {
    let (home, port) = Home::with_dashboard();
    // The daemon runs with a hard limit of 160 descriptors: it cannot raise its soft one.
    let mut daemon = std::process::Command::new("prlimit")
        .args(["--nofile=160:160", "--"])
        .arg(pmx_tests::pmx_bin())
        .arg("daemon")
        .env("PMX_HOME", home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux)");
    wait_for("the daemon's socket", Duration::from_secs(10), || {
        home.path().join("pmx.sock").exists().then_some(())
    });
    crash_loop(&home, "sh -c 'sleep 0.3; exit 1'", &[]);
    let before = restarts(&home, "crash");
    // 300 idle TCP connections to the HTTP port, 150 idle clients of the socket.
    let tcp: Vec<_> = (0..300)
        .filter_map(|_| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok()
        })
        .collect();
    let unix: Vec<_> = (0..150)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(home.path().join("pmx.sock")).ok())
        .collect();
    assert!(tcp.len() >= 100, "only {} connections", tcp.len());
    // Meanwhile the crash loop goes on: an app short of descriptors is retried, never
    // given up on.
    let during = std::time::Instant::now();
    while during.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(200));
        assert_ne!(
            home.status("crash"),
            "errored",
            "given up for want of descriptors"
        );
    }
    drop(tcp);
    drop(unix);
    let status = wait_for("the crash loop to go on", Duration::from_secs(30), || {
        let p = home.proc("crash");
        let n = p["pm2_env"]["restart_time"].as_u64().unwrap_or(0);
        (n >= before + 10).then(|| p["pm2_env"]["status"].as_str().unwrap_or("").to_string())
    });
    assert_ne!(status, "errored");
    let answer = pmx_tests::http(port, "GET", "/metrics", &[]);
    assert_eq!(answer.status, 200);
    home.ok(&["kill"]);
    pmx_tests::wait_within(&mut daemon, "the daemon");
}

fn names(home: &Home) -> Vec<String> {
    home.jlist()
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_delete_is_journaled_when_decided_and_spares_the_next_app_of_that_name() {
    let home = Home::new();
    let slow = |name: &str| {
        home.ok(&[
            "start",
            &fixture("ignore_sigint.py"),
            "--name",
            name,
            "--kill-timeout",
            "3000",
        ]);
        home.wait_output(name, "ignoring");
    };
    // A new app of the same name, registered while the old one is still being stopped.
    slow("svc");
    let mut delete = home.command(&["delete", "svc"]).spawn().expect("delete");
    wait_for("svc out of the list", Duration::from_secs(5), || {
        (!names(&home).contains(&"svc".to_string())).then_some(())
    });
    home.ok(&["start", &fixture("forever.sh"), "--name", "svc"]);
    let new_id = home.proc("svc")["pm_id"].clone();
    assert!(pmx_tests::wait_within(&mut delete, "delete").success());
    // A kill -9 during a stop, after the delete was decided.
    slow("gone");
    let mut interrupted = home.command(&["delete", "gone"]).spawn().expect("delete");
    wait_for("gone out of the list", Duration::from_secs(5), || {
        (!names(&home).contains(&"gone".to_string())).then_some(())
    });
    home.kill_daemon();
    pmx_tests::wait_within(&mut interrupted, "the interrupted delete");
    // The next daemon replays the journal.
    let after = names(&home);
    assert!(
        after.contains(&"svc".to_string()),
        "the new svc was deleted: {after:?}"
    );
    assert_eq!(home.proc("svc")["pm_id"], new_id);
    assert!(
        !after.contains(&"gone".to_string()),
        "a deleted app came back: {after:?}"
    );
    home.wait_online("svc");
}

/// The daemon's resident memory, from /proc.
fn daemon_rss_kib(home: &Home) -> u64 {
    let pid = home.daemon_pid().expect("daemon pid");
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn floods_without_newlines_keep_the_daemon_small_and_the_files_rotated() {
    let home = Home::new();
    // Log files of at most 1 MiB.
    let started = home
        .command(&["ping"])
        .env("PMX_LOG_MAX_SIZE", "1M")
        .output_within();
    assert!(started.status.success());
    let idle = daemon_rss_kib(&home);
    // 300 MB to the readiness channel without a newline, then silence.
    let start = home
        .command(&[
            "start",
            "sh -c 'head -c 300000000 /dev/zero >&$PMX_CHANNEL_FD; echo flooded; sleep 600'",
            "--name",
            "chan",
            "--wait-ready",
            "--listen-timeout",
            "120000",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start chan");
    // Ended even if the test fails: left running, it would start a daemon again.
    let mut start = KillOnDrop(start);
    // 60 MB of output without a newline.
    home.ok(&[
        "start",
        "sh -c 'head -c 60000000 /dev/zero | tr \"\\0\" x; sleep 600'",
        "--name",
        "flat",
    ]);
    let mut peak = 0;
    let out = home.path().join("logs/flat-out.log");
    let rotated = || {
        std::fs::read_dir(home.path().join("logs"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("flat-out__"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for("60 MB written and rotated", Duration::from_secs(60), || {
        peak = peak.max(daemon_rss_kib(&home));
        let size = std::fs::metadata(&out).map_or(0, |m| m.len());
        // The size, plus at most one cut piece of a line (2 MiB).
        assert!(size <= 3 * 1024 * 1024, "flat-out.log grew to {size} bytes");
        (rotated() >= 15).then_some(())
    });
    // A tail of a newline-less file reads a bounded part of it.
    let tail = home.ok(&["logs", "flat", "--lines", "1", "--nostream", "--raw"]);
    assert!(tail.len() <= 300 * 1024, "{} bytes", tail.len());
    // The channel flood went through the daemon (the app is still waiting to be ready,
    // and so is its `pmx start`, which is ended here).
    home.wait_output("chan", "flooded");
    start.end();
    peak = peak.max(daemon_rss_kib(&home));
    assert!(
        peak < idle + 64 * 1024,
        "the daemon grew from {idle} KiB to {peak} KiB"
    );
    home.ok(&["ping"]);
}

/// Fills the home's journal (before any daemon runs) with `events` notes on one app, and a
/// snapshot, so the daemon boots at once.
fn fill_journal(home: &Home, events: u64) {
    use pmx_core::event::{Cause, EventKind, NewEvent};
    use pmx_storage::Journal;
    let journal = pmx_storage::SledJournal::open(&home.path().join("journal")).expect("journal");
    let mut written = 0;
    while written < events {
        let batch = (0..1000)
            .map(|n| NewEvent {
                app: "noisy".into(),
                instance: Some(0),
                kind: EventKind::Note {
                    text: format!("event {} of a long history", written + n),
                },
                cause: Cause::Process,
            })
            .collect();
        journal.append(batch).expect("append");
        written += 1000;
    }
    pmx_storage::take_snapshot(&journal).expect("snapshot");
    journal.flush().expect("flush");
}

#[test]
fn history_scans_never_delay_other_clients() {
    let home = Home::new();
    fill_journal(&home, 60_000);
    home.ok(&["ping"]);
    let hammering = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // The clients stop even if the test fails: left running, they would start a daemon again.
    let stop = hammering.clone();
    let _stop = OnDrop(move || stop.store(false, std::sync::atomic::Ordering::Relaxed));
    // Three clients asking for a window that matches nothing: each reads every event.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = home.command(&["history", "all", "--since", "1s", "--json"]);
            let hammering = hammering.clone();
            std::thread::spawn(move || {
                let mut scans = 0;
                while hammering.load(std::sync::atomic::Ordering::Relaxed) {
                    assert!(cmd.output_within().status.success());
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut pings: Vec<Duration> = (0..30)
        .map(|_| {
            let at = std::time::Instant::now();
            home.ok(&["ping"]);
            at.elapsed()
        })
        .collect();
    hammering.store(false, std::sync::atomic::Ordering::Relaxed);
    let scans: u32 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    pings.sort();
    let (median, worst) = (pings[pings.len() / 2], pings[pings.len() - 1]);
    assert!(scans >= 3, "only {scans} scans ran");
    // Generous for a debug build on a loaded machine; a ping waiting behind scans takes
    // seconds.
    assert!(
        median < Duration::from_millis(150) && worst < Duration::from_millis(1500),
        "ping took {median:?} (median), {worst:?} (worst) while {scans} scans ran"
    );
}

/// What README promises a `kill -9` may lose: asynchronous events of the last 500 ms (the
/// group commit waits 100 ms; a flush under load can take much longer than its usual 10 ms).
const KILL_WINDOW: Duration = Duration::from_millis(500);

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[test]
fn a_kill_9_during_a_crash_loop_loses_only_the_stated_window() {
    let home = Home::new();
    let runs = home.file("runs");
    crash_loop(&home, &fixture("crash_record.sh"), &["--", &runs]);
    let mut kills = Vec::new();
    for round in 0..6u64 {
        // Kill at varied moments of the loop.
        std::thread::sleep(Duration::from_millis(400 + round * 97));
        kills.push(now_ns());
        home.kill_daemon();
        home.ok(&["ping"]);
    }
    std::thread::sleep(Duration::from_millis(300));
    home.ok(&["stop", "crash"]);
    let journaled: std::collections::HashSet<u64> = home
        .history("crash")
        .iter()
        .filter(|e| e["kind"]["type"] == "spawned")
        .filter_map(|e| e["kind"]["pid"].as_u64())
        .collect();
    let text = std::fs::read_to_string(&runs).expect("runs");
    let window = KILL_WINDOW.as_nanos();
    let mut lost = Vec::new();
    let mut excused = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(pid), Some(at)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (pid, at): (u64, u128) = (pid.parse().expect("pid"), at.parse().expect("time"));
        if journaled.contains(&pid) {
            continue;
        }
        // A run begun within the window before a kill may be lost; so may one spawned just
        // before the kill that wrote its time just after it.
        let late = Duration::from_millis(100).as_nanos();
        if kills
            .iter()
            .any(|&k| at.saturating_add(window) >= k && at <= k.saturating_add(late))
        {
            excused += 1;
        } else {
            // How long before the next kill it began (ms), to say by how much it missed.
            let before = kills
                .iter()
                .find(|&&k| k >= at)
                .map(|k| (k - at) / 1_000_000);
            lost.push((pid, before));
        }
    }
    assert!(
        text.lines().count() > 20,
        "the loop ran {} times",
        text.lines().count()
    );
    assert!(
        lost.is_empty(),
        "{} runs lost outside the window ({excused} within it): {lost:?}",
        lost.len()
    );
}

#[test]
fn a_log_file_in_the_home_is_never_written_through_a_link() {
    let home = Home::new();
    home.ok(&["ping"]);
    let outside = tempfile::tempdir().expect("dir");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched\n").expect("victim");
    std::os::unix::fs::symlink(&victim, home.path().join("logs/trap-out.log")).expect("link");
    home.ok(&["start", &fixture("ticker.sh"), "--name", "trap"]);
    wait_for(
        "the refused write to be counted",
        Duration::from_secs(10),
        || {
            let lost = home.proc("trap")["pm2_env"]["log_lost_bytes"].as_u64()?;
            (lost > 0).then_some(())
        },
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "untouched\n"
    );
    home.wait_online("trap");
}

#[test]
fn an_http_client_that_sends_nothing_is_closed_after_the_header_timeout() {
    use std::io::Read;
    let (home, port) = pmx_tests::Home::with_dashboard();
    home.ok(&["ping"]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut silent = std::net::TcpStream::connect(addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let at = std::time::Instant::now();
    let mut byte = [0u8; 1];
    // The server closes it (end of stream, or a reset): it never waits forever.
    let read = silent.read(&mut byte);
    let waited = at.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) && waited < Duration::from_secs(20),
        "{read:?} after {waited:?}"
    );
    assert!(
        waited >= Duration::from_secs(5),
        "closed after {waited:?}: before the 10 s timeout"
    );
    // Meanwhile, and after, others are served.
    assert_eq!(pmx_tests::http(port, "GET", "/metrics", &[]).status, 200);
}
