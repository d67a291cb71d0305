//! Cluster mode: the daemon holds the listening socket, instances share it, and `reload`
//! replaces them one by one under load without a failed request; a new version that does
//! not come up never replaces the old one. Readiness by sd_notify; health checks.

use std::collections::BTreeSet;
use std::time::Duration;

use pmx_tests::{Home, Load, alive, fixture, free_port, request, wait_for};
use serde_json::Value;

fn pids(home: &Home, name: &str) -> Vec<u32> {
    home.jlist()
        .iter()
        .filter(|p| p["name"] == name)
        .map(|p| p["pid"].as_u64().unwrap_or(0) as u32)
        .collect()
}

fn statuses(home: &Home, name: &str) -> Vec<String> {
    home.jlist()
        .iter()
        .filter(|p| p["name"] == name)
        .map(|p| p["pm2_env"]["status"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Starts `args` on a free port, then reloads it five times under load: no request fails,
/// every instance answers, and each reload leaves new processes and no old one.
fn reload_five_times_under_load(home: &Home, name: &str, args: &[&str]) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut start = vec!["start"];
    start.extend_from_slice(args);
    start.extend_from_slice(&["--name", name, "-i", "2", "--listen", &listen]);
    home.ok(&start);
    assert_eq!(statuses(home, name), ["online", "online"]);
    let load = Load::start(port, 6);
    let first = pids(home, name);
    wait_for("both instances answering", Duration::from_secs(10), || {
        let seen = load.report().answers;
        first
            .iter()
            .all(|p| seen.contains_key(&p.to_string()))
            .then_some(())
    });
    let mut before = first.clone();
    for round in 0..5 {
        let out = home.ok(&["reload", name]);
        assert!(
            !out.contains("restart"),
            "a rolling reload, not a restart: {out}"
        );
        let after = pids(home, name);
        assert_eq!(after.len(), 2, "round {round}: {after:?}");
        for old in &before {
            assert!(
                !after.contains(old),
                "round {round}: {old} was not replaced"
            );
            assert!(!alive(*old), "round {round}: old pid {old} still runs");
        }
        before = after;
    }
    // The last instances are in the rotation too.
    wait_for(
        "the new instances answering",
        Duration::from_secs(10),
        || {
            let seen = load.report().answers;
            before
                .iter()
                .all(|p| seen.contains_key(&p.to_string()))
                .then_some(())
        },
    );
    let report = load.finish();
    report.assert_none_failed();
    assert!(
        report.ok() > 200,
        "too little load to mean anything: {report:?}"
    );
    assert!(
        report.answers.len() >= 12,
        "2 + 5×2 processes answered: {report:?}"
    );
    let history = home.ok(&["history", name]);
    assert_eq!(
        history.matches("leaves the rotation").count(),
        10,
        "{history}"
    );
}

#[test]
fn a_plain_node_server_reloads_five_times_under_load_without_a_failed_request() {
    let home = Home::new();
    // Every answer takes 20 ms, so requests are in flight whenever an instance is replaced,
    // and the app exits the moment it gets SIGINT: it must have left the rotation and
    // finished its requests before.
    reload_five_times_under_load(
        &home,
        "web",
        &[
            &fixture("cluster.js"),
            "--env",
            "DELAY_MS=20",
            "--env",
            "EXIT_AT_ONCE=1",
        ],
    );
    let history = home.ok(&["history", "web"]);
    assert!(
        history.contains("listening on the shared socket"),
        "{history}"
    );
}

/// PM2's habit: `start server.js -i 3` on a Node server whose port pmx is never told. The
/// instances are cluster workers of the daemon, which binds the port they ask for once and
/// shares it: none dies of EADDRINUSE, and `reload` replaces them under load.
#[test]
fn node_instances_share_a_port_only_the_app_knows_and_reload_under_load() {
    let home = Home::new();
    let port = free_port();
    let app_port = format!("APP_PORT={port}");
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "web",
        "-i",
        "3",
        "--env",
        &app_port,
        "--env",
        "DELAY_MS=20",
        "--env",
        "EXIT_AT_ONCE=1",
    ]);
    let modes: Vec<Value> = home
        .jlist()
        .iter()
        .map(|p| p["pm2_env"]["exec_mode"].clone())
        .collect();
    assert_eq!(modes, ["cluster_mode"; 3]);
    // Online when Node says so, as under PM2: the port answers once a worker listens.
    wait_for("the port answering", Duration::from_secs(10), || {
        request(port).ok()
    });
    // The measure: 5 reloads under 4 clients.
    let load = Load::start(port, 4);
    let first = pids(&home, "web");
    wait_for("three instances answering", Duration::from_secs(15), || {
        let seen = load.report().answers;
        first
            .iter()
            .all(|p| seen.contains_key(&p.to_string()))
            .then_some(())
    });
    let mut before = first.clone();
    for round in 1..=5 {
        let out = home.ok(&["reload", "web"]);
        assert!(!out.contains("by a restart"), "{out}");
        let now = pids(&home, "web");
        assert!(
            now.iter()
                .all(|p| !first.contains(p) && !before.contains(p)),
            "round {round}: {before:?} → {now:?}"
        );
        before = now;
    }
    let report = load.finish();
    report.assert_none_failed();
    // Each instance restarted once per reload and never on its own.
    for p in home.jlist() {
        assert_eq!(p["pm2_env"]["restart_time"], 5, "{p}");
        assert_eq!(p["pm2_env"]["unstable_restarts"], 0, "{p}");
    }
    let history = home.ok(&["history", "web"]);
    assert!(
        history.contains("listening on the shared socket"),
        "{history}"
    );

    // A port another program holds: the instance gets Node's own error, as under PM2.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = format!("APP_PORT={}", taken.local_addr().unwrap().port());
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "blocked",
        "-i",
        "1",
        "--env",
        &taken_port,
        "--no-autorestart",
    ]);
    home.wait_status("blocked", "stopped");
    let log = std::fs::read_to_string(home.file("logs/blocked-error.log")).unwrap_or_default();
    assert!(log.contains("EADDRINUSE"), "{log}");

    // Only Node has cluster mode: other instances are plain processes, as PM2 shows them.
    home.ok(&["start", &fixture("forever.sh"), "--name", "sh", "-i", "2"]);
    for p in home.jlist().iter().filter(|p| p["name"] == "sh") {
        assert_eq!(p["pm2_env"]["exec_mode"], "fork_mode", "{p}");
    }
}

/// A Unix socket path in cluster mode: the workers share it as they share a port; a socket
/// file another program has there is never removed (the app gets Node's `EADDRINUSE`).
#[test]
fn node_instances_share_a_unix_path_and_never_unlink_someone_elses() {
    use std::io::{Read, Write};
    let home = Home::new();
    let path = home.file("app.sock");
    let app_path = format!("APP_PORT={path}");
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "unix",
        "-i",
        "2",
        "--env",
        &app_path,
    ]);
    let ask = || -> Option<String> {
        let mut s = std::os::unix::net::UnixStream::connect(&path).ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(
            text.split("\r\n\r\n")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string(),
        )
    };
    let instances = pids(&home, "unix");
    let mut seen = BTreeSet::new();
    wait_for("both instances answering", Duration::from_secs(15), || {
        seen.insert(ask()?);
        (seen.len() == 2).then_some(())
    });
    let answered: BTreeSet<String> = instances.iter().map(u32::to_string).collect();
    assert_eq!(seen, answered);

    let foreign = home.file("foreign.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&foreign).unwrap();
    let foreign_path = format!("APP_PORT={foreign}");
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "intruder",
        "-i",
        "1",
        "--env",
        &foreign_path,
        "--no-autorestart",
    ]);
    home.wait_status("intruder", "stopped");
    let log = std::fs::read_to_string(home.file("logs/intruder-error.log")).unwrap_or_default();
    assert!(log.contains("EADDRINUSE"), "{log}");
    assert!(
        std::os::unix::net::UnixStream::connect(&foreign).is_ok(),
        "the other program's socket is still there"
    );
}

/// The daemon holds at most 64 addresses for one app's workers: an app that asks for more
/// gets `EMFILE` for the rest instead of growing the daemon without bound.
#[test]
fn a_worker_asking_for_endless_addresses_is_refused_past_the_cap() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("many_listens.js"),
        "--name",
        "greedy",
        "-i",
        "1",
    ]);
    let log = home.file("logs/greedy-out.log");
    let text = wait_for("the count", Duration::from_secs(15), || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("listening").then_some(text)
    });
    assert!(text.contains("listening 64 first error EMFILE"), "{text}");
}

/// After `kill -9` of the daemon, cluster workers end with it (Node ends a worker whose
/// primary is gone, as under PM2); the next daemon starts them again on the same port.
#[test]
fn cluster_workers_come_back_after_the_daemon_is_killed() {
    let home = Home::new();
    let port = free_port();
    let app_port = format!("APP_PORT={port}");
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "web",
        "-i",
        "2",
        "--env",
        &app_port,
    ]);
    let before = pids(&home, "web");
    wait_for("the port answering", Duration::from_secs(10), || {
        request(port).ok()
    });
    home.kill_daemon();
    for pid in &before {
        pmx_tests::wait_gone(*pid);
    }
    home.ok(&["ping"]);
    wait_for("both workers back", Duration::from_secs(15), || {
        let now = pids(&home, "web");
        (now.len() == 2 && now.iter().all(|p| *p != 0 && !before.contains(p))).then_some(())
    });
    wait_for("the port answering again", Duration::from_secs(10), || {
        request(port).ok()
    });
}

#[test]
fn a_python_server_on_the_inherited_fd_reloads_under_load_without_a_failed_request() {
    let home = Home::new();
    reload_five_times_under_load(
        &home,
        "py",
        &[
            &fixture("fd_server.py"),
            "--wait-ready",
            // Python starting on a loaded machine can take seconds: the reload is the test.
            "--listen-timeout",
            "10000",
            "--env",
            "DELAY_MS=20",
        ],
    );
    let history = home.ok(&["history", "py"]);
    assert!(history.contains("(sd_notify READY=1)"), "{history}");
}

#[test]
fn a_new_version_that_crashes_at_start_never_replaces_the_old_one() {
    let home = Home::new();
    let port = free_port();
    let app = home.file("app.js");
    std::fs::copy(fixture("cluster.js"), &app).unwrap();
    let listen = port.to_string();
    home.ok(&[
        "start", &app, "--name", "api", "-i", "2", "--listen", &listen,
    ]);
    let old = pids(&home, "api");
    std::fs::write(&app, "console.error('boom'); process.exit(3);\n").unwrap();
    let err = home.fails(1, &["reload", "api"]);
    assert!(err.contains("reload failed"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains(&format!("pid {}", old[0])), "{err}");
    // The old instances keep serving; the failed process is gone.
    assert_eq!(pids(&home, "api"), old);
    assert_eq!(statuses(&home, "api"), ["online", "online"]);
    for _ in 0..20 {
        let pid: u32 = request(port).unwrap().parse().unwrap();
        assert!(old.contains(&pid), "answered by {pid}, not {old:?}");
    }
    assert!(home.processes_of(&app).iter().all(|p| old.contains(p)));
    let history = home.history("api");
    let failed: Vec<&Value> = history
        .iter()
        .filter(|e| e["kind"]["type"] == "reload" && e["kind"]["step"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{history:?}");
    assert_eq!(failed[0]["kind"]["old_pid"], old[0]);
    // A fixed version reloads.
    std::fs::copy(fixture("cluster.js"), &app).unwrap();
    home.ok(&["reload", "api"]);
    let new = pids(&home, "api");
    assert!(new.iter().all(|p| !old.contains(p)), "{new:?} {old:?}");
}

#[test]
fn wait_ready_waits_for_sd_notify_and_fails_a_process_that_never_says_it() {
    let home = Home::new();
    let port = free_port();
    let listen = port.to_string();
    home.ok(&[
        "start",
        &fixture("fd_server.py"),
        "--name",
        "slow",
        "--listen",
        &listen,
        "--wait-ready",
        "--env",
        "READY_AFTER_MS=600",
    ]);
    // `start` answered once the process said READY=1, not at spawn.
    let history = home.ok(&["history", "slow"]);
    let line = history
        .lines()
        .find(|l| l.contains("launching → online"))
        .unwrap_or_else(|| panic!("{history}"));
    let after: u64 = line
        .split("ready after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(after >= 600, "{line}");
    assert!(line.contains("sd_notify"), "{line}");
    request(port).unwrap();

    // Never ready: the instance fails to start, and restarts count as unstable.
    let mute = free_port().to_string();
    home.ok(&[
        "start",
        &fixture("fd_server.py"),
        "--name",
        "mute",
        "--listen",
        &mute,
        "--wait-ready",
        "--listen-timeout",
        "300",
        "--max-restarts",
        "1",
        "--env",
        "SAY_READY=0",
    ]);
    home.wait_status("mute", "errored");
    let history = home.ok(&["history", "mute"]);
    assert!(
        history.contains("not ready within listen_timeout 300 ms"),
        "{history}"
    );
    assert!(
        home.processes_of("fd_server.py").len() == 1,
        "only `slow` runs"
    );
}

#[test]
fn failed_health_checks_restart_the_app_with_the_check_in_its_history() {
    let home = Home::new();
    let port = free_port();
    let sick = home.file("sick");
    let config = home.file("health.json");
    let app = serde_json::json!({
        "apps": [{
            "name": "checked",
            "script": fixture("fd_server.py"),
            "listen": port,
            "wait_ready": true,
            "env": { "SICK_FILE": sick },
            "health": {
                "url": format!("http://127.0.0.1:{port}/"),
                "interval": "100ms",
                "timeout": "500ms",
                "failures": 3
            }
        }]
    });
    std::fs::write(&config, app.to_string()).unwrap();
    home.ok(&["start", &config]);
    let first = home.wait_online("checked");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(home.pid("checked"), first, "healthy: left alone");
    std::fs::write(&sick, "").unwrap();
    wait_for(
        "a restart by the health check",
        Duration::from_secs(10),
        || {
            let p = home.proc("checked");
            let pid = p["pid"].as_u64().unwrap_or(0) as u32;
            (pid != first && pid != 0).then_some(())
        },
    );
    let history = home.ok(&["history", "checked"]);
    let line = history
        .lines()
        .find(|l| l.contains("rule health"))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(
        line.contains("3 failed checks in a row: status 503"),
        "{line}"
    );
    assert!(
        line.contains(&format!("GET http://127.0.0.1:{port}/")),
        "{line}"
    );
    let distinct: BTreeSet<u32> = [first, home.pid("checked")].into();
    assert_eq!(distinct.len(), 2);
}

#[test]
fn reload_parallel_replaces_instances_together_and_an_app_without_listen_restarts() {
    let home = Home::new();
    let port = free_port();
    let listen = port.to_string();
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "pair",
        "-i",
        "2",
        "--listen",
        &listen,
    ]);
    let old = pids(&home, "pair");
    home.ok(&["reload", "pair", "--parallel", "2"]);
    let new = pids(&home, "pair");
    assert!(new.iter().all(|p| !old.contains(p)), "{old:?} → {new:?}");
    // Both new processes were started before either old one left.
    let steps: Vec<String> = home
        .history("pair")
        .iter()
        .filter(|e| e["kind"]["type"] == "reload")
        .map(|e| e["kind"]["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        steps,
        ["replacing", "replacing", "replaced", "replaced"],
        "{steps:?}"
    );

    home.ok(&["start", &fixture("forever.sh"), "--name", "plain"]);
    let before = home.pid("plain");
    let out = home.ok(&["reload", "plain"]);
    assert!(
        out.contains("plain has no listen socket held by pmx: reloaded by a restart"),
        "{out}"
    );
    let after = home.wait_online("plain");
    assert_ne!(before, after);
    assert!(!alive(before));
}

#[test]
fn instances_get_their_numbers_and_a_unix_socket_is_passed_like_a_port() {
    let home = Home::new();
    let socket = home.file("app.sock");
    let config = home.file("vars.json");
    let app = serde_json::json!({
        "apps": [{
            "name": "vars",
            "script": fixture("fd_server.py"),
            "instances": 2,
            "listen": socket,
            "wait_ready": true,
            "instance_var": "INSTANCE_ID",
            "increment_var": "METRICS_PORT",
            "env": { "METRICS_PORT": "9100" }
        }]
    });
    std::fs::write(&config, app.to_string()).unwrap();
    home.ok(&["start", &config]);
    let mut seen = Vec::new();
    for pid in pids(&home, "vars") {
        let environ =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
                .replace('\0', "\n");
        let var = |name: &str| {
            environ
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(String::from)
        };
        assert_eq!(var("LISTEN_FDS").as_deref(), Some("1"), "{environ}");
        assert_eq!(var("LISTEN_FDNAMES").as_deref(), Some("unix"));
        assert_eq!(var("PORT"), None, "no port for a Unix socket");
        seen.push((var("INSTANCE_ID"), var("METRICS_PORT")));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (Some("0".into()), Some("9100".into())),
            (Some("1".into()), Some("9101".into()))
        ]
    );
    // The instances answer on the socket the daemon holds.
    let mut answered = BTreeSet::new();
    for _ in 0..40 {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        answered.insert(
            body.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let expected: BTreeSet<String> = pids(&home, "vars").iter().map(u32::to_string).collect();
    assert!(
        answered.is_subset(&expected) && !answered.is_empty(),
        "{answered:?} {expected:?}"
    );
}
