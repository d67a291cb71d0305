//! `pmx update`: the daemon re-executes itself in place (same pid) and adopts every process:
//! none restarted, no request to a `listen` app failed, no log line lost or written twice, an
//! app starting still awaited, an app waiting to restart restarted when due, followers
//! following again, the upgrade in every app's history. A binary that cannot take over is
//! refused and nothing changes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pmx_tests::{Home, Load, Within, alive, fixture, free_port, wait_for};

/// Each instance's (name, id, pid, status).
fn processes(home: &Home) -> Vec<(String, u64, u64, String)> {
    home.jlist()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["pm_id"].as_u64().unwrap_or(0),
                p["pid"].as_u64().unwrap_or(0),
                p["pm2_env"]["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The numbers of the `WORD N` lines in APP's log, which must follow each other.
fn numbered(home: &Home, app: &str, word: &str) -> Vec<u64> {
    let log = std::fs::read_to_string(home.path().join(format!("logs/{app}-out.log")))
        .unwrap_or_default();
    log.lines()
        .filter_map(|l| l.strip_prefix(word)?.trim().parse().ok())
        .collect()
}

fn ticks(home: &Home) -> Vec<u64> {
    numbered(home, "tick", "tick ")
}

fn assert_consecutive(numbers: &[u64]) {
    let broken: Vec<_> = numbers.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(broken.is_empty(), "lines lost or repeated at {broken:?}");
}

#[test]
fn an_update_adopts_every_process_and_loses_nothing() {
    let home = Home::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // The daemon serves /metrics too: its listener is handed over as well.
    let metrics = free_port();
    let toml = format!("metrics = \"127.0.0.1:{metrics}\"\n");
    std::fs::write(home.path().join("daemon.toml"), toml).unwrap();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    // A Node app (several threads) that talks to the daemon through the shim's channel:
    // `jobs done` goes up every 200 ms.
    let agent_port = free_port().to_string();
    home.ok(&[
        "start",
        &fixture("agent.js"),
        "--name",
        "agent",
        "--env",
        &format!("PORT={agent_port}"),
    ]);
    home.ok(&["start", &fixture("flood_pieces.py"), "--name", "flood"]);
    home.ok(&["start", &fixture("halves.py"), "--name", "halves"]);
    home.ok(&[
        "start",
        &fixture("fd_server.py"),
        "--name",
        "web",
        "-i",
        "2",
        "--listen",
        &listen,
    ]);
    // Never says it is ready: still launching when the update comes (its `start` waits for
    // it, so it runs beside the test).
    let mut starting = home
        .command(&[
            "start",
            &fixture("forever.sh"),
            "--name",
            "slow",
            "--wait-ready",
            "--listen-timeout",
            "600000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("slow launching", Duration::from_secs(10), || {
        home.jlist()
            .iter()
            .any(|p| p["name"] == "slow" && p["pm2_env"]["status"] == "launching")
            .then_some(())
    });
    // Crashes after 1 s, restarted 4 s later: waiting when the update comes.
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "later",
        "--restart-delay",
        "4000",
        "--",
        "1",
        "1",
    ]);
    home.wait_status("later", "waiting restart");
    let crashed_at = Instant::now();
    let load = Load::start(port, 4);
    wait_for(
        "both web instances answering",
        Duration::from_secs(10),
        || (load.report().answers.len() >= 2).then_some(()),
    );
    let mut follower = home
        .command(&["logs", "tick", "--raw", "--out", "--lines", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut history = home
        .command(&["history", "tick", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut history_out = BufReader::new(history.stdout.take().unwrap()).lines();
    let first_event = history_out.next().unwrap().unwrap();
    let before = processes(&home);
    let uptime = |home: &Home| home.proc("tick")["pm2_env"]["pm_uptime"].as_u64();
    let started = uptime(&home);
    let daemon = home.daemon_pid().unwrap();
    let jobs =
        |home: &Home| home.proc("agent")["pm2_env"]["axm_monitor"]["jobs done"]["value"].as_u64();
    let jobs_before = wait_for("the Node app's figures", Duration::from_secs(10), || {
        jobs(&home)
    });
    let out = home.ok(&["update"]);
    assert!(out.contains("none restarted"), "{out}");

    assert_eq!(home.daemon_pid(), Some(daemon), "the daemon's pid changed");
    let after = processes(&home);
    for (name, id, pid, status) in &before {
        if name == "later" {
            continue;
        }
        let now = after.iter().find(|p| p.1 == *id).unwrap();
        assert_eq!(
            (&now.0, now.2, &now.3),
            (name, *pid, status),
            "{name} #{id}: {after:?}"
        );
        assert!(alive(*pid as u32));
    }
    // The Node app still talks through its channel: its figures go on.
    wait_for(
        "the Node app's figures after the update",
        Duration::from_secs(10),
        || jobs(&home).filter(|&n| n > jobs_before + 2),
    );
    // The same /metrics listener answers, and the home's lock is still held: a second
    // daemon is refused.
    assert_eq!(pmx_tests::http(metrics, "GET", "/metrics", &[]).status, 200);
    let second = home.command(&["daemon"]).output_within();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already runs"),
        "{second:?}"
    );
    // The process goes on, and so does its uptime.
    assert_eq!(uptime(&home), started);
    // The app that was starting is still awaited, not taken for online.
    assert_eq!(home.status("slow"), "launching");
    // The waiting one restarts when it was due (4 s after its crash), not at once.
    assert_eq!(home.status("later"), "waiting restart");
    home.wait_status("later", "online");
    assert!(
        crashed_at.elapsed() >= Duration::from_millis(3500),
        "restarted {:?} after its crash",
        crashed_at.elapsed()
    );

    // Requests kept being answered, by the same processes.
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish();
    report.assert_none_failed();
    assert!(
        report.ok() > 50,
        "too little load to mean anything: {report:?}"
    );

    // Output goes on: every line once, across the update.
    let seen = ticks(&home).len();
    wait_for(
        "tick lines after the update",
        Duration::from_secs(5),
        || (ticks(&home).len() > seen + 10).then_some(()),
    );
    assert_consecutive(&ticks(&home));
    // A flood, read half a line at a time, loses and repeats nothing either.
    let flood = numbered(&home, "flood", "flood ");
    assert!(flood.len() > 1000, "{} flood lines", flood.len());
    assert_consecutive(&flood);
    home.ok(&["stop", "flood"]);
    // Half a line read when the update came is finished by the next daemon, once.
    let halves = numbered(&home, "halves", "half ");
    assert!(halves.len() > 5, "{halves:?}");
    assert_consecutive(&halves);
    let log = std::fs::read_to_string(home.path().join("logs/halves-out.log")).unwrap();
    assert!(
        log.lines().all(|l| l.starts_with("half ")),
        "a line was cut:\n{log}"
    );

    // The follower was told, followed again and gets new lines.
    let stderr = follower.stderr.take().unwrap();
    let mut said = String::new();
    BufReader::new(stderr).read_line(&mut said).unwrap();
    assert!(said.contains("the daemon was updated"), "{said}");
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut last = 0;
    for _ in 0..40 {
        last = lines
            .next()
            .unwrap()
            .unwrap()
            .trim_start_matches("tick ")
            .parse()
            .unwrap_or(0);
    }
    assert!(last > 0);
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = starting.kill();
    let _ = starting.wait();

    // The history follower too, from the last event it showed: the upgrade, then what
    // comes after it.
    home.ok(&["restart", "tick"]);
    let stderr = history.stderr.take().unwrap();
    let mut said = String::new();
    BufReader::new(stderr).read_line(&mut said).unwrap();
    assert!(said.contains("the daemon was updated"), "{said}");
    let mut shown = vec![first_event];
    for line in history_out.by_ref() {
        let line = line.unwrap();
        let done = line.contains("restart");
        shown.push(line);
        if done {
            break;
        }
    }
    let upgraded = shown
        .iter()
        .filter(|l| l.contains("daemon upgraded"))
        .count();
    assert_eq!(upgraded, 1, "{shown:#?}");
    // Nothing shown before the update is shown again.
    let first = shown.iter().filter(|l| **l == shown[0]).count();
    assert_eq!(first, 1, "{shown:#?}");
    let _ = history.kill();
    let _ = history.wait();

    // The journal says why nothing restarted; a crash after the update is seen.
    let history = home.ok(&["history", "tick"]);
    assert!(history.contains("daemon upgraded"), "{history}");
    let (id, web) = after
        .iter()
        .find(|p| p.0 == "web")
        .map(|p| (p.1, p.2))
        .unwrap();
    unsafe { libc::kill(web as i32, libc::SIGKILL) };
    wait_for(
        "the killed instance restarted",
        Duration::from_secs(10),
        || {
            processes(&home)
                .iter()
                .any(|p| p.1 == id && p.2 != web && p.2 != 0 && p.3 == "online")
                .then_some(())
        },
    );
}

/// PM2's `start server.js -i 2` on a plain Node server: its workers are the daemon's cluster
/// workers, and they go on across an update (same pids, every request answered); a worker
/// started after it shares the very socket the others listen on, and a reload still replaces
/// them one by one without a failed request.
#[test]
fn an_update_keeps_node_cluster_workers_and_their_shared_socket() {
    let home = Home::new();
    let port = free_port();
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "web",
        "-i",
        "2",
        "--env",
        &format!("APP_PORT={port}"),
    ]);
    let pids = |home: &Home| -> Vec<u64> {
        let online = processes(home)
            .into_iter()
            .filter(|p| p.0 == "web" && p.3 == "online" && p.2 != 0);
        online.map(|p| p.2).collect()
    };
    let load = Load::start(port, 4);
    let before = wait_for("both workers answering", Duration::from_secs(10), || {
        let seen = load.report().answers;
        let pids = pids(&home);
        (pids.len() == 2 && pids.iter().all(|p| seen.contains_key(&p.to_string()))).then_some(pids)
    });
    // Refusals while the workers were still starting are not the update's (on a loaded
    // machine Node takes a while to listen).
    load.recount();
    let out = home.ok(&["update"]);
    assert!(out.contains("none restarted"), "{out}");
    assert_eq!(pids(&home), before, "the workers are the same processes");
    let history = home.ok(&["history", "web"]);
    assert!(history.contains("(2 processes adopted)"), "{history}");
    // Every request across the update was answered, by the same workers.
    std::thread::sleep(Duration::from_millis(300));
    let across = load.finish();
    across.assert_none_failed();
    assert!(
        across.ok() > 50,
        "too little load to mean anything: {across:?}"
    );

    // A worker started by the new daemon asks it for the port: the socket the others hold.
    // (SIGKILL drops what that worker had in flight: this load's failures are not counted.)
    let load = Load::start(port, 4);
    unsafe { libc::kill(before[0] as i32, libc::SIGKILL) };
    let restarted = wait_for("a new worker answering", Duration::from_secs(15), || {
        let seen = load.report().answers;
        let new = pids(&home).into_iter().find(|p| !before.contains(p))?;
        seen.contains_key(&new.to_string()).then_some(new)
    });
    assert!(alive(before[1] as u32));
    for id in 0..2 {
        let log = home.path().join(format!("logs/web-error-{id}.log"));
        let log = std::fs::read_to_string(log).unwrap_or_default();
        assert!(!log.contains("EADDRINUSE"), "{log}");
    }
    let load_after = {
        let _ = load.finish();
        Load::start(port, 4)
    };
    home.ok(&["reload", "web"]);
    let now = pids(&home);
    assert!(
        !now.contains(&restarted) && !now.contains(&before[1]),
        "{now:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = load_after.finish();
    report.assert_none_failed();
    assert!(
        report.ok() > 20,
        "too little load to mean anything: {report:?}"
    );
}

#[test]
fn an_update_to_a_binary_that_cannot_take_over_changes_nothing() {
    let home = Home::new();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    let before = processes(&home);
    let daemon = home.daemon_pid();
    let err = home.fails(2, &["update", "--binary", "/bin/true"]);
    assert!(
        err.contains("is not a pmx daemon that can take over"),
        "{err}"
    );
    let err = home.fails(2, &["update", "--binary", "/nonexistent/pmxd"]);
    assert!(err.contains("cannot run /nonexistent/pmxd"), "{err}");
    // One update at a time: a second, asked while the first checks its binary, is refused.
    let slow = home.path().join("slow-pmxd");
    std::fs::write(&slow, "#!/bin/sh\nsleep 2\necho nope\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let slow = slow.to_string_lossy().into_owned();
    let first = home
        .command(&["update", "--binary", &slow])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let err = home.fails(2, &["update", "--binary", &slow]);
    assert!(err.contains("already under way"), "{err}");
    let first = pmx_tests::output_of(first, "the first update");
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("is not a pmx daemon"),
        "{first:?}"
    );
    // Refused, it leaves the way free for the next.
    let err = home.fails(2, &["update", "--binary", "/bin/true"]);
    assert!(err.contains("is not a pmx daemon"), "{err}");

    // A pmx of another protocol version can still ask for an update (and nothing else).
    let raw = |hello: &str, then: Option<&str>| -> String {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(home.path().join("pmx.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut exchange = |frame: &str| -> String {
            s.write_all(&(frame.len() as u32).to_be_bytes()).unwrap();
            s.write_all(frame.as_bytes()).unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut body).unwrap();
            String::from_utf8(body).unwrap()
        };
        let welcome = exchange(hello);
        match then {
            Some(frame) => exchange(frame),
            None => welcome,
        }
    };
    let refused = raw(r#"{"version": 999}"#, None);
    assert!(refused.contains("speaks protocol"), "{refused}");
    let answer = raw(
        r#"{"version": 999, "update": true}"#,
        Some(r#"{"binary": "/bin/true"}"#),
    );
    assert!(
        answer.contains("is not a pmx daemon that can take over"),
        "{answer}"
    );
    assert_eq!(home.daemon_pid(), daemon);
    assert_eq!(processes(&home), before);
    let seen = ticks(&home).len();
    wait_for("tick lines still written", Duration::from_secs(5), || {
        (ticks(&home).len() > seen + 5).then_some(())
    });
    assert_consecutive(&ticks(&home));
}

/// A handoff that does not hold (its descriptors closed, its process not a child of the
/// daemon reading it) falls back to the takeover: the process is replaced, never run twice.
#[test]
fn a_handoff_that_does_not_hold_falls_back_to_the_takeover() {
    let home = Home::new();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    let old = home.pid("tick");
    let stat = std::fs::read_to_string(format!("/proc/{old}/stat")).unwrap();
    let start: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    home.kill_daemon();
    let handoff = home.path().join("handoff.json");
    let forged = format!(
        r#"{{"version": 1, "from": "0.0.1", "lock_fd": 901, "socket_fd": 902,
            "runs": [{{"app": "tick", "id": 0, "pid": {old}, "start_time": {start},
                       "pidfd": 903, "online": true}}]}}"#
    );
    std::fs::write(&handoff, forged).unwrap();
    let mut daemon = std::process::Command::new("sh")
        .args(["-c", "exec \"$0\" daemon 5<\"$1\""])
        .arg(pmx_tests::pmx_bin())
        .arg(&handoff)
        .env("PMX_HOME", home.path())
        .env("PMX_HANDOFF_FD", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until this daemon listens, a CLI call would start a daemon of its own (which takes the
    // lock and makes this one give up): wait for its socket to answer first.
    let socket = home.path().join("pmx.sock");
    wait_for("the daemon listening", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&socket).ok()
    });
    let new = wait_for("tick taken over", Duration::from_secs(20), || {
        let p = home.proc("tick");
        let pid = p["pid"].as_u64().unwrap_or(0) as u32;
        (pid != 0 && pid != old && p["pm2_env"]["status"] == "online").then_some(pid)
    });
    wait_for("the old process stopped", Duration::from_secs(10), || {
        (!alive(old)).then_some(())
    });
    assert!(alive(new));
    let history = home.ok(&["history", "tick"]);
    assert!(history.contains("(0 processes adopted)"), "{history}");
    home.ok(&["kill"]);
    pmx_tests::wait_within(&mut daemon, "the daemon");
}
