//! The journal as something to trust: env values stay out of history, retention cuts the
//! record and says so, a damaged journal is kept aside and the apps come back anyway.

use pmx_tests::Within;
use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for};

#[test]
fn env_values_are_shown_only_by_pmx_env() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "secretive",
        "--env",
        "API_TOKEN=s3cr3t-value",
    ]);
    home.wait_online("secretive");
    let env = home.ok(&["env", "secretive"]);
    assert!(env.lines().any(|l| l == "API_TOKEN=s3cr3t-value"), "{env}");
    assert!(
        env.lines().any(|l| l.starts_with("PATH=")),
        "the captured environment too: {env}"
    );
    // And what pmx adds to each instance's environment, as the process has it.
    let pid = home.pid("secretive");
    assert!(
        env.contains(&format!(
            "# set by pmx in instance 0 (pid {pid}):\nNODE_APP_INSTANCE=0\n"
        )),
        "{env}"
    );
    assert!(env.lines().any(|l| l == "PMX_NAME=secretive"), "{env}");
    let describe = home.ok(&["describe", "secretive"]);
    assert!(describe.contains("API_TOKEN"), "keys are shown: {describe}");
    for shown in [
        describe,
        home.ok(&["history", "secretive", "--json"]),
        home.ok(&["history", "all"]),
    ] {
        assert!(!shown.contains("s3cr3t-value"), "a value leaked: {shown}");
    }
    let stderr = home.fails(1, &["env", "nobody"]);
    assert!(stderr.contains("nobody"), "{stderr}");
}

#[test]
fn values_a_config_read_with_env_stay_out_of_history() {
    let home = Home::new();
    let config = home.file("policies.rhai");
    std::fs::write(
        &config,
        format!(
            r#"let limit = env("ALERT_TOKEN");
app(#{{ name: "api", script: "{}" }});
rule("noop", #{{ every: "1h" }}, |ctx| {{ }});
"#,
            fixture("forever.sh")
        ),
    )
    .unwrap();
    let out = home
        .command(&["up", &config])
        .env("ALERT_TOKEN", "t0ken-v4lue")
        .output_within();
    assert!(out.status.success(), "{out:?}");
    home.wait_online("api");
    let json = home.ok(&["history", "all", "--json"]);
    assert!(json.contains("ALERT_TOKEN"), "the key is named: {json}");
    for shown in [json, home.ok(&["history", "all"])] {
        assert!(!shown.contains("t0ken-v4lue"), "a value leaked: {shown}");
    }
}

#[test]
fn retention_cuts_old_events_and_history_says_where() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("crash.sh"),
        "--name",
        "chatty",
        "--max-restarts",
        "100000",
        "--",
        "1",
        "0.02",
    ]);
    wait_for("many events", Duration::from_secs(20), || {
        (home.history("chatty").len() > 60).then_some(())
    });
    home.ok(&["stop", "chatty"]);
    let before = home.history("chatty").len();
    home.stop_daemon();
    // The next daemon keeps 20 events per app: it applies retention when it starts.
    let out = home
        .command(&["ping"])
        .env("PMX_RETENTION_EVENTS", "20")
        .output_within();
    assert!(out.status.success());
    let text = wait_for("retention", Duration::from_secs(10), || {
        let text = home.ok(&["history", "chatty"]);
        text.contains("removed by retention").then_some(text)
    });
    // `… N earlier events removed by retention (through event S of TIME)`
    let first: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let removed: usize = first[1].parse().unwrap();
    let through: u64 = first[9].parse().unwrap();
    let kept = home.history("chatty");
    assert_eq!(kept.len(), 20);
    // Everything before the stop of the daemon is accounted for.
    assert!(removed + kept.len() > before, "{removed} + 20 vs {before}");
    assert!(kept[0]["seq"].as_u64().unwrap() > through);
    assert!(
        kept.iter().any(|e| e["kind"]["verb"] == "stop"),
        "the newest are kept"
    );
    let all = home.ok(&["history", "all"]);
    assert!(all.contains("retention removed"), "journaled: {all}");
    // The registry outlives its events: the app is still known, stopped, with its id.
    assert_eq!(home.status("chatty"), "stopped");
    assert_eq!(home.proc("chatty")["pm_id"], 0);
}

fn foreground_daemon(home: &Home) -> Child {
    let child = Command::new(pmx_tests::pmx_bin())
        .args(["daemon", "--no-daemon"])
        .env("PMX_HOME", home.path())
        .stderr(fs::File::create(home.path().join("pmx.log")).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the daemon's socket", Duration::from_secs(10), || {
        home.path().join("pmx.sock").exists().then_some(())
    });
    child
}

fn stop(mut daemon: Child) {
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = wait_for("daemon exit", Duration::from_secs(10), || {
        daemon.try_wait().unwrap()
    });
    assert!(status.success(), "SIGTERM ends the daemon with 0");
}

#[test]
fn a_damaged_journal_is_kept_aside_and_the_apps_come_back() {
    let home = Home::new();
    let daemon = foreground_daemon(&home);
    home.ok(&["start", &fixture("forever.sh"), "--name", "survivor"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "resting"]);
    let first = home.wait_online("survivor");
    home.ok(&["stop", "resting"]);
    stop(daemon);
    assert!(!alive(first));
    // Cut the data file to a third, as a full disk or a bad copy would.
    let data = home.path().join("journal/db");
    let len = fs::metadata(&data).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let daemon = foreground_daemon(&home);
    let log = home.daemon_log();
    assert!(log.contains("THE JOURNAL WAS DAMAGED"), "{log}");
    let kept: Vec<_> = fs::read_dir(home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "a copy of the damaged files is kept");
    assert_eq!(
        fs::metadata(kept[0].path().join("db")).unwrap().len(),
        len / 3,
        "as they were found"
    );
    home.wait_online("survivor");
    assert_eq!(
        home.status("resting"),
        "stopped",
        "desired state is restored"
    );
    let all = home.ok(&["history", "all"]);
    assert!(all.contains("JOURNAL DAMAGED"), "{all}");
    stop(daemon);
}
