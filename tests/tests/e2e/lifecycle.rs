//! start, list, stop, restart, delete, targets, env, interpreters, journal, kill and boot.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for, wait_gone};

#[test]
fn start_stop_restart_delete_lifecycle() {
    let home = Home::new();
    let out = home.ok(&["start", &fixture("forever.sh"), "--name", "api"]);
    assert!(out.contains("api"), "{out}");
    let pid = home.wait_online("api");
    let p = home.proc("api");
    assert_eq!(p["pm_id"], 0);
    assert_eq!(p["pm2_env"]["restart_time"], 0);
    assert_eq!(p["pm2_env"]["exec_mode"], "fork_mode");
    assert!(p["pm2_env"]["pm_uptime"].as_u64().unwrap() > 0);
    assert!(p["monit"]["memory"].as_u64().unwrap() > 0, "{p}");

    home.ok(&["stop", "api"]);
    assert!(!alive(pid), "stop returns once the process is gone");
    assert_eq!(home.status("api"), "stopped");
    assert_eq!(home.pid("api"), 0);

    home.ok(&["restart", "api"]);
    let pid2 = home.wait_online("api");
    assert_ne!(pid, pid2);
    assert_eq!(
        home.proc("api")["pm2_env"]["restart_time"],
        0,
        "as PM2: restarting a stopped app starts it, no restart counted"
    );
    assert_eq!(
        home.proc("api")["pm_id"],
        0,
        "ids are stable across restarts"
    );

    home.ok(&["restart", "api"]);
    let pid3 = home.wait_online("api");
    assert!(!alive(pid2) && pid3 != pid2);
    assert_eq!(home.proc("api")["pm2_env"]["restart_time"], 1);

    home.ok(&["delete", "api"]);
    assert!(!alive(pid3));
    assert!(home.jlist().is_empty());
    // As PM2: with no app left, ids number from 0 again.
    home.ok(&["start", &fixture("forever.sh"), "--name", "again"]);
    assert_eq!(home.proc("again")["pm_id"], 0);
}

#[test]
fn targets_by_id_name_all_and_several() {
    let home = Home::new();
    for name in ["a", "b", "c"] {
        home.ok(&["start", &fixture("forever.sh"), "--name", name]);
    }
    let pids: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|n| home.wait_online(n))
        .collect();
    home.ok(&["stop", "0", "c"]);
    assert_eq!(home.status("a"), "stopped");
    assert_eq!(home.status("b"), "online");
    assert_eq!(home.status("c"), "stopped");
    assert!(!alive(pids[0]) && alive(pids[1]) && !alive(pids[2]));
    home.ok(&["restart", "all"]);
    for n in ["a", "b", "c"] {
        home.wait_online(n);
    }
    assert!(!alive(pids[1]), "restart all replaced b's process");
    home.ok(&["delete", "all"]);
    assert!(home.jlist().is_empty());
}

#[test]
fn env_args_and_instance_ids_reach_the_app() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "envy",
        "--env",
        "FOO=bar",
        "--",
        "--port",
        "8080",
    ]);
    home.wait_online("envy");
    let log = home.path().join("logs/envy-out.log");
    let line = wait_for("app output", Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains('\n'))
    });
    assert_eq!(
        line.trim(),
        "started id=0 name=envy instance=0 foo=bar args=--port 8080"
    );
    let describe = home.ok(&["describe", "envy"]);
    for field in [
        "script path",
        "interpreter",
        "exec cwd",
        "env keys",
        "FOO",
        "restart delay",
        "created at",
        "last exit",
    ] {
        assert!(
            describe.contains(field),
            "describe lacks {field}: {describe}"
        );
    }
    assert!(
        !describe.contains("bar"),
        "describe shows env keys, not values"
    );
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn node_script_by_extension_serves_http() {
    let home = Home::new();
    let port = free_port();
    home.ok(&[
        "start",
        &fixture("server.js"),
        "--name",
        "web",
        "--env",
        &format!("PORT={port}"),
    ]);
    home.wait_online("web");
    let body = wait_for("HTTP answer", Duration::from_secs(10), || http_get(port));
    assert!(body.ends_with("ok web"), "{body}");
    assert!(
        home.proc("web")["pm2_env"]["exec_interpreter"]
            .as_str()
            .unwrap()
            .ends_with("node")
    );
}

#[test]
fn quoted_command_line_runs_through_sh() {
    let home = Home::new();
    let port = free_port();
    let command = format!("python3 -m http.server {port} --bind 127.0.0.1");
    home.ok(&["start", &command, "--name", "files"]);
    let pid = home.wait_online("files");
    let body = wait_for("HTTP answer", Duration::from_secs(10), || http_get(port));
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    home.ok(&["stop", "files"]);
    wait_gone(pid);
    assert!(
        http_get(port).is_none(),
        "the server (a child of sh) stopped too"
    );
}

#[test]
fn journal_records_every_transition_and_survives_delete() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "j",
        "--no-autorestart",
        "--",
        "4",
    ]);
    home.wait_status("j", "stopped");
    home.ok(&["delete", "j"]);
    let events = home.history("j");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["kind"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"app_created"));
    assert!(kinds.contains(&"spawned") && kinds.contains(&"exited"));
    assert_eq!(kinds.last(), Some(&"app_deleted"));
    let transitions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"]["type"] == "transition")
        .map(|e| (e["kind"]["from"].to_string(), e["kind"]["to"].to_string()))
        .collect();
    assert_eq!(
        transitions,
        [
            ("stopped", "launching"),
            ("launching", "online"),
            ("online", "stopped")
        ]
        .map(|(a, b)| (format!("\"{a}\""), format!("\"{b}\"")))
    );
    let exited = events
        .iter()
        .find(|e| e["kind"]["type"] == "exited")
        .unwrap();
    assert_eq!(exited["kind"]["exit"]["code"], 4);
    let start = events
        .iter()
        .find(|e| e["kind"]["type"] == "command")
        .unwrap();
    assert_eq!(start["cause"]["by"], "user");
    // Sequence numbers are strictly increasing.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let text = home.ok(&["history", "j"]);
    assert!(
        text.contains("exited with code 4 (autorestart off)"),
        "{text}"
    );
}

#[test]
fn a_daemon_ended_by_sigterm_stops_apps_and_the_next_one_brings_them_back() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "keep"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "idle"]);
    let keep = home.wait_online("keep");
    let idle = home.wait_online("idle");
    home.ok(&["stop", "idle"]);
    wait_gone(idle);
    let daemon = home.daemon_pid().unwrap();
    home.stop_daemon();
    assert!(!alive(keep), "the daemon's stop stops every app");
    assert!(!alive(daemon));
    assert!(!home.path().join("pmx.sock").exists());
    // The next command starts a daemon that folds the journal back into the registry.
    home.ok(&["ping"]);
    let keep2 = home.wait_online("keep");
    assert_ne!(keep, keep2);
    assert_eq!(
        home.status("idle"),
        "stopped",
        "stop changed what should run"
    );
    assert_eq!(
        home.proc("keep")["pm_id"],
        0,
        "same ids after the daemon restarts"
    );
    home.ok(&["start", &fixture("forever.sh"), "--name", "new"]);
    assert_eq!(home.proc("new")["pm_id"], 2, "ids are not reused");
}

#[test]
fn kill_removes_every_app_until_resurrect_brings_back_the_last_save() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "a"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "b"]);
    let a = home.wait_online("a");
    home.ok(&["save"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "unsaved"]);
    let daemon = home.daemon_pid().unwrap();
    home.ok(&["kill"]);
    assert!(!alive(a), "kill stops every app");
    assert!(!alive(daemon), "kill ends the daemon");
    assert!(!home.path().join("pmx.sock").exists());
    // As PM2: the next daemon has no app, and numbers from 0 again.
    assert!(home.jlist().is_empty(), "{:?}", home.jlist());
    home.ok(&["start", &fixture("forever.sh"), "--name", "fresh"]);
    assert_eq!(home.proc("fresh")["pm_id"], 0);
    home.ok(&["resurrect"]);
    for name in ["a", "b"] {
        home.wait_online(name);
    }
    let names: Vec<String> = home
        .jlist()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["fresh", "a", "b"], "the unsaved app stays gone");
    let kill = home.history("a");
    assert!(
        kill.iter()
            .any(|e| e["kind"]["type"] == "command" && e["kind"]["verb"] == "kill"),
        "the kill is in the app's history"
    );
}

#[test]
fn send_signal_and_reset() {
    let home = Home::new();
    let out = home.file("usr2");
    home.ok(&[
        "start",
        &fixture("on_usr2.py"),
        "--name",
        "sig",
        "--env",
        &format!("OUT_FILE={out}"),
    ]);
    home.wait_online("sig");
    home.wait_output("sig", "ready");
    home.ok(&["sendSignal", "SIGUSR2", "sig"]);
    let got = wait_for("USR2 handled", Duration::from_secs(5), || {
        std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty())
    });
    assert_eq!(got, "got USR2");
    home.ok(&["restart", "sig"]);
    home.wait_online("sig");
    assert_eq!(home.proc("sig")["pm2_env"]["restart_time"], 1);
    home.ok(&["reset", "sig"]);
    assert_eq!(home.proc("sig")["pm2_env"]["restart_time"], 0);
}

#[test]
fn several_instances_get_their_own_ids_and_index() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "multi",
        "-i",
        "2",
    ]);
    let procs = wait_for("2 online", Duration::from_secs(10), || {
        let all = home.jlist();
        (all.len() == 2 && all.iter().all(|p| p["pm2_env"]["status"] == "online")).then_some(all)
    });
    assert_eq!(procs[0]["pm_id"], 0);
    assert_eq!(procs[1]["pm_id"], 1);
    assert_eq!(procs[1]["pm2_env"]["NODE_APP_INSTANCE"], 1);
    assert_ne!(procs[0]["pid"], procs[1]["pid"]);
    let log = home.path().join("logs/multi-out-1.log");
    let line = wait_for("instance 1 output", Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains('\n'))
    });
    assert!(line.contains("id=1 name=multi instance=1"), "{line}");
    // An id targets one instance only.
    home.ok(&["stop", "1"]);
    let all = home.jlist();
    assert_eq!(all[0]["pm2_env"]["status"], "online");
    assert_eq!(all[1]["pm2_env"]["status"], "stopped");
    assert!(!alive(procs[1]["pid"].as_u64().unwrap() as u32));
    let stderr = home.fails(2, &["delete", "0"]);
    assert!(stderr.contains("delete removes a whole app"), "{stderr}");
}

/// Exits are group-committed: shortly after they happen they survive a daemon killed with
/// SIGKILL (no flush on the way out).
#[test]
fn asynchronous_events_are_durable_after_the_group_commit() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "gone",
        "--no-autorestart",
        "--",
        "7",
    ]);
    home.wait_status("gone", "stopped");
    std::thread::sleep(Duration::from_millis(600));
    let daemon = home.daemon_pid().unwrap();
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    home.wait_daemon_exit();
    let events = home.history("gone"); // a new daemon reads the journal
    let exited = events.iter().find(|e| e["kind"]["type"] == "exited");
    assert_eq!(
        exited.expect("the exit survived")["kind"]["exit"]["code"],
        7
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"]["type"] == "transition" && e["kind"]["to"] == "stopped")
    );
}

#[test]
fn foreground_daemon_stops_its_apps_on_sigterm_and_is_alone() {
    let home = Home::new();
    let mut daemon = home
        .command(&["daemon"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("socket", Duration::from_secs(10), || {
        home.path().join("pmx.sock").exists().then_some(())
    });
    home.ok(&["start", &fixture("forever.sh"), "--name", "fg"]);
    let app = home.wait_online("fg");
    assert_eq!(
        home.daemon_pid(),
        Some(daemon.id()),
        "the CLI used the foreground daemon"
    );

    let second = home.run(&["daemon"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already runs"));
    assert!(alive(app), "a refused second daemon disturbs nothing");

    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(pmx_tests::wait_within(&mut daemon, "the daemon").success());
    assert!(
        !alive(app),
        "SIGTERM stops the apps before the daemon exits"
    );
    let events = home.history("fg"); // the next daemon brings fg back: SIGTERM kept it desired
    assert!(events.iter().any(|e| e["cause"]["by"] == "shutdown"));
    home.wait_online("fg");
}

#[test]
fn save_then_resurrect_brings_back_deleted_and_stopped_apps() {
    let home = Home::new();
    let stderr = home.fails(1, &["resurrect"]);
    assert!(stderr.contains("nothing saved"), "{stderr}");
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "a",
        "--env",
        "FOO=kept",
    ]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "b"]);
    let out = home.ok(&["save"]);
    assert!(out.contains("saved 2 apps: a, b"), "{out}");
    // PM2's dump.pm2 beside the journal's save (0600): each process's pm2_env.
    let dump = home.path().join("dump.pm2");
    let text = std::fs::read_to_string(&dump).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<_> = entries.iter().map(|e| e["name"].clone()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(entries[0]["env"]["FOO"], "kept");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!home.path().join("dump.pm2.bak").exists());
    home.ok(&["save"]);
    assert_eq!(
        std::fs::read_to_string(home.path().join("dump.pm2.bak")).unwrap(),
        text
    );
    home.ok(&["delete", "a"]);
    home.ok(&["stop", "b"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "c"]);
    let c = home.wait_online("c");

    home.ok(&["resurrect"]);
    home.wait_online("a");
    home.wait_online("b");
    assert_eq!(
        home.pid("c"),
        c,
        "apps outside the checkpoint are left alone"
    );
    assert_eq!(
        home.proc("a")["pm2_env"]["env"]["FOO"],
        "kept",
        "the saved spec, env included"
    );
    let saved = home
        .history("all")
        .into_iter()
        .filter(|e| e["kind"]["type"] == "saved")
        .count();
    assert_eq!(saved, 2);

    // A broken dump is set aside; the journal's save still brings the apps back.
    std::fs::write(&dump, "[{").unwrap();
    home.ok(&["delete", "a"]);
    let out = home.ok(&["resurrect"]);
    assert!(out.contains("is not valid JSON: moved to"), "{out}");
    assert!(!dump.exists());
    assert_eq!(
        std::fs::read_to_string(home.path().join("dump.pm2.broken")).unwrap(),
        "[{"
    );
    home.wait_online("a");
}

#[test]
fn start_with_the_name_of_an_app_starts_it_or_restarts_it_as_pm2_does() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "api"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "other"]);
    let other = home.wait_online("other");
    home.ok(&["stop", "api"]);
    assert_eq!(home.status("api"), "stopped");
    home.ok(&["start", "api"]);
    let pid = home.wait_online("api");
    assert!(alive(pid));
    assert_eq!(home.pid("other"), other, "only the named app");
    // Started already: PM2 restarts it.
    home.ok(&["start", "api"]);
    let again = home.wait_online("api");
    assert_ne!(again, pid);
    assert_eq!(home.proc("api")["pm2_env"]["restart_time"], 1);
    home.ok(&["start", "0"]);
    assert_eq!(home.proc("api")["pm2_env"]["restart_time"], 2, "by id too");
    assert_eq!(home.pid("other"), other, "only the named app");
    assert_eq!(home.jlist().len(), 2, "no new app registered");
    // A name nobody registered is still a script, and a missing one is a usage error.
    let err = home.fails(2, &["start", "nosuchapp"]);
    assert!(err.contains("nosuchapp"), "{err}");
}
