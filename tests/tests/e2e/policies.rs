//! Policies: the sampler's figures, `max_memory_restart`, `cron_restart`, `watch`, `scale`,
//! and rules in Rhai (autoscaling, a broken rule). Daemons sample every 100 ms here.

use pmx_tests::Within;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for};
use serde_json::Value;

fn instances(home: &Home, name: &str) -> Vec<Value> {
    home.jlist()
        .into_iter()
        .filter(|p| p["name"] == name)
        .collect()
}

fn ids_and_pids(home: &Home, name: &str) -> Vec<(u64, u64)> {
    instances(home, name)
        .iter()
        .map(|p| (p["pm_id"].as_u64().unwrap(), p["pid"].as_u64().unwrap()))
        .collect()
}

#[test]
fn memory_above_the_limit_restarts_the_instance_with_the_figures_in_history() {
    let home = Home::fast_sampling();
    home.ok(&[
        "start",
        &fixture("hog.py"),
        "--name",
        "hog",
        "--max-memory-restart",
        "60M",
    ]);
    let first = home.wait_online("hog");
    wait_for(
        "a restart by the memory limit",
        Duration::from_secs(15),
        || {
            let p = home.proc("hog");
            let pid = p["pid"].as_u64().unwrap_or(0) as u32;
            (p["pm2_env"]["status"] == "online" && pid != first && pid != 0).then_some(())
        },
    );
    assert!(!alive(first), "the old process is gone");
    let history = home.ok(&["history", "hog"]);
    let by_rule: Vec<&str> = (history.lines())
        .filter(|l| l.contains("rule max_memory_restart"))
        .collect();
    // One road: the decision is journaled as a command, with its figures, before the stop.
    let decided = (by_rule.iter())
        .position(|l| l.contains("command restart"))
        .unwrap_or_else(|| panic!("no memory restart decided in history:\n{history}"));
    let stopping = (by_rule.iter())
        .position(|l| l.contains("online → stopping"))
        .unwrap_or_else(|| panic!("graceful: no stop by the memory limit:\n{history}"));
    assert!(
        decided < stopping,
        "decided before it is carried out:\n{history}"
    );
    for line in [by_rule[decided], by_rule[stopping]] {
        assert!(line.contains("above the limit 60.0mb"), "{line}");
        assert!(line.contains("pid "), "the figures: {line}");
    }
    let describe = home.ok(&["describe", "hog"]);
    assert!(
        describe.contains("max memory restart         60.0mb"),
        "{describe}"
    );
}

#[test]
fn the_sampler_measures_the_whole_process_tree() {
    let home = Home::fast_sampling();
    // A shell that runs a child: the tree is two processes.
    home.ok(&["start", &fixture("grandchild.sh"), "--name", "tree"]);
    home.wait_online("tree");
    let monit = wait_for("tree figures", Duration::from_secs(5), || {
        let m = home.proc("tree")["monit"].clone();
        (m["processes"].as_u64() >= Some(2)).then_some(m)
    });
    assert!(
        monit["tree_memory"].as_u64() > monit["memory"].as_u64(),
        "{monit}"
    );
}

#[test]
fn cron_restart_with_seconds_restarts_a_running_app_and_starts_a_stopped_one() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "tick",
        "--cron-restart",
        "*/2 * * * * *",
    ]);
    let first = home.wait_online("tick");
    wait_for("a cron restart", Duration::from_secs(6), || {
        let pid = home.pid("tick");
        (pid != first && pid != 0).then_some(())
    });
    let history = home.ok(&["history", "tick"]);
    assert!(
        history.contains("rule cron_restart: cron */2 * * * * * at"),
        "{history}"
    );
    // As PM2: a tick starts a stopped instance too.
    home.ok(&["stop", "tick"]);
    assert_eq!(home.status("tick"), "stopped");
    home.wait_online("tick");

    // So a job that runs and exits (no autorestart) runs again at each tick, PM2's way of
    // scheduling a script.
    home.ok(&[
        "start",
        "echo ran",
        "--name",
        "job",
        "--no-autorestart",
        "--cron-restart",
        "*/2 * * * * *",
    ]);
    let log = home.file("logs/job-out.log");
    wait_for("the job run three times", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).ok()?;
        (text.matches("ran").count() >= 3).then_some(())
    });
    assert_eq!(
        home.proc("job")["pm2_env"]["restart_time"],
        0,
        "a start, not a restart"
    );
}

#[test]
fn a_watched_change_restarts_the_app_and_an_ignored_one_does_not() {
    let home = Home::new();
    let dir = home.file("src");
    std::fs::create_dir(&dir).unwrap();
    // The app writes its own logs into the watched directory, all the time.
    home.ok(&[
        "start",
        &fixture("ticker.sh"),
        "--name",
        "dev",
        "--watch",
        &dir,
        "--ignore-watch",
        "*.tmp",
        "--watch-delay",
        "200ms",
        "-o",
        &format!("{dir}/out.log"),
        "-e",
        &format!("{dir}/err.log"),
    ]);
    let first = home.wait_online("dev");
    std::fs::write(format!("{dir}/scratch.tmp"), "noise").unwrap();
    std::fs::create_dir_all(format!("{dir}/node_modules/x")).unwrap();
    std::fs::write(format!("{dir}/node_modules/x/index.js"), "1").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(home.pid("dev"), first, "ignored files restart nothing");
    std::fs::write(format!("{dir}/app.conf"), "changed").unwrap();
    let second = wait_for("a restart on change", Duration::from_secs(5), || {
        let pid = home.pid("dev");
        (pid != first && pid != 0).then_some(pid)
    });
    assert!(alive(second));
    let history = home.ok(&["history", "dev"]);
    assert!(
        history.contains(&format!("rule watch: {dir}/app.conf changed")),
        "{history}"
    );
}

/// PM2's watch switch: `stop` pauses watching (a change then starts nothing), `start
/// --watch` resumes it, `restart --watch` toggles it, `jlist` says which.
#[test]
fn stop_pauses_watching_and_restart_watch_toggles_it() {
    let home = Home::new();
    let dir = home.file("src");
    std::fs::create_dir(&dir).unwrap();
    let script = format!("{dir}/app.sh");
    std::fs::write(&script, "#!/bin/sh\nwhile true; do sleep 0.2; done\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let watching = |home: &Home| home.jlist()[0]["pm2_env"]["watch"].as_bool();
    // `--watch` without paths watches the directory it is typed in.
    let start_in_dir = |args: &[&str]| {
        let out = home.command(args).current_dir(&dir).output_within();
        assert!(out.status.success(), "{out:?}");
    };
    start_in_dir(&["start", "app.sh", "--watch", "--watch-delay", "100ms"]);
    home.wait_online("app");
    assert_eq!(watching(&home), Some(true));
    home.ok(&["stop", "app"]);
    assert_eq!(watching(&home), Some(false));
    std::fs::write(format!("{dir}/changed.txt"), "1").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(home.pid("app"), 0, "a change while stopped starts nothing");
    home.ok(&["start", "app"]);
    assert_eq!(watching(&home), Some(false), "start keeps it paused");
    home.ok(&["restart", "app", "--watch"]);
    assert_eq!(watching(&home), Some(true));
    let first = home.wait_online("app");
    std::fs::write(format!("{dir}/changed.txt"), "2").unwrap();
    wait_for("a restart on change", Duration::from_secs(5), || {
        let pid = home.pid("app");
        (pid != first && pid != 0).then_some(())
    });
    home.ok(&["restart", "app", "--watch"]);
    assert_eq!(watching(&home), Some(false));
    home.ok(&["stop", "app"]);
    start_in_dir(&["start", "app.sh", "--watch"]);
    assert_eq!(watching(&home), Some(true));
}

#[test]
fn scale_adds_and_retires_instances_and_the_others_keep_running() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "api", "-i", "2"]);
    home.wait_online("api");
    let before = ids_and_pids(&home, "api");
    home.ok(&["scale", "api", "+2"]);
    let grown = ids_and_pids(&home, "api");
    assert_eq!(grown.len(), 4);
    assert_eq!(
        &grown[..2],
        &before[..],
        "the first two kept their ids and processes"
    );
    // Down, PM2's order: the lowest NODE_APP_INSTANCEs go, the last one stays as it was.
    home.ok(&["scale", "api", "1"]);
    let shrunk = ids_and_pids(&home, "api");
    assert_eq!(shrunk, vec![grown[3]]);
    for (_, pid) in &grown[..3] {
        assert!(!alive(*pid as u32), "retired instance {pid} still runs");
    }
    assert_eq!(app_instances(&home, "api"), vec![3]);
    let err = home.fails(2, &["scale", "api", "-1"]);
    assert!(err.contains("between 1 and"), "{err}");
    let history = home.ok(&["history", "api"]);
    assert!(
        history.contains("scaled 2 → 4 instances [0, 1, 2, 3]"),
        "{history}"
    );
    assert!(history.contains("scaled 4 → 1 instances [3]"), "{history}");
    // The journal remembers the count and each one's NODE_APP_INSTANCE: a new daemon brings
    // back instance 3, and a scale up gives new ids the free numbers 0 and 1.
    home.stop_daemon();
    home.ok(&["ping"]);
    home.wait_online("api");
    assert_eq!(app_instances(&home, "api"), vec![3]);
    home.ok(&["scale", "api", "3"]);
    let ids: Vec<u64> = ids_and_pids(&home, "api")
        .iter()
        .map(|&(id, _)| id)
        .collect();
    assert_eq!(ids, vec![3, 4, 5]);
    assert_eq!(app_instances(&home, "api"), vec![3, 0, 1]);
    let pid = home.pid("api");
    assert_eq!(
        pmx_tests::environ(pid)
            .iter()
            .find(|v| v.starts_with("NODE_APP_INSTANCE=")),
        Some(&"NODE_APP_INSTANCE=3".to_string()),
        "the process has the number jlist shows"
    );
}

/// Each instance's NODE_APP_INSTANCE, in jlist's order (by pm_id).
fn app_instances(home: &Home, name: &str) -> Vec<u64> {
    instances(home, name)
        .iter()
        .map(|p| p["pm2_env"]["NODE_APP_INSTANCE"].as_u64().unwrap())
        .collect()
}

#[test]
fn an_autoscale_rule_follows_the_load_up_and_back_down_after_its_cooldown() {
    let home = Home::fast_sampling();
    let flag = home.file("busy");
    let config = home.file("policies.rhai");
    std::fs::write(
        &config,
        format!(
            r#"app(#{{ name: "work", script: "{}", args: ["{flag}"] }});
autoscale("work", #{{ min: 1, max: 2, above: 40.0, below: 10.0, window: "1s", every: "300ms", cooldown: "2s" }});
"#,
            fixture("load.py")
        ),
    )
    .unwrap();
    home.ok(&["up", &config]);
    home.wait_online("work");
    std::fs::write(&flag, "").unwrap();
    wait_for("a second instance", Duration::from_secs(15), || {
        (instances(&home, "work").len() == 2).then_some(())
    });
    let second = wait_for(
        "the second instance online",
        Duration::from_secs(10),
        || {
            let pids = ids_and_pids(&home, "work");
            pids.get(1)
                .map(|&(_, pid)| pid as u32)
                .filter(|&pid| pid != 0)
        },
    );
    let history = home.ok(&["history", "work"]);
    let line = history
        .lines()
        .find(|l| l.contains("scaled 1 → 2"))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(line.contains("rule autoscale-work: cpu"), "{line}");
    assert!(line.contains("work.cpu_avg(1s)="), "figures: {line}");
    std::fs::remove_file(&flag).unwrap();
    wait_for("back to one instance", Duration::from_secs(20), || {
        (instances(&home, "work").len() == 1).then_some(())
    });
    // PM2's order: the lowest NODE_APP_INSTANCE is retired, the newer instance stays.
    assert_eq!(home.pid("work"), second, "the second instance stayed");
    let rules = home.ok(&["rules"]);
    assert!(
        rules.contains("autoscale-work (every 300ms, active)"),
        "{rules}"
    );
    assert!(rules.contains("scale to 1 work"), "{rules}");
}

#[test]
fn a_broken_rule_is_disabled_and_reported_while_apps_keep_running() {
    let home = Home::new();
    let config = home.file("policies.rhai");
    let app = format!(
        r#"app(#{{ name: "api", script: "{}" }});"#,
        fixture("forever.sh")
    );
    std::fs::write(
        &config,
        format!(
            "{app}\nrule(\"spin\", #{{ every: \"200ms\" }}, |ctx| {{ loop {{ }} }});\nrule(\"oops\", #{{ every: \"200ms\" }}, |ctx| {{ ctx.app(\"nope\").restart(\"x\") }});\n"
        ),
    )
    .unwrap();
    let out = home.ok(&["up", &config]);
    assert!(out.contains("rules loaded: `spin`, `oops`"), "{out}");
    let pid = home.wait_online("api");
    let rules = wait_for("both rules disabled", Duration::from_secs(10), || {
        let out = home.ok(&["rules"]);
        (out.matches("disabled)").count() == 2).then_some(out)
    });
    assert!(rules.contains("(an endless loop?)"), "{rules}");
    assert!(rules.contains("no app named `nope`"), "{rules}");
    let history = home.ok(&["history", "all"]);
    assert!(
        history.contains("rule spin failed and is disabled"),
        "{history}"
    );
    assert_eq!(home.pid("api"), pid, "the app was untouched");
    assert!(alive(pid));

    // A rule with a bad option is refused where it is written; nothing changes.
    std::fs::write(
        &config,
        format!("{app}\nrule(\"slow\", #{{ evry: \"1s\" }}, |ctx| {{ }});\n"),
    )
    .unwrap();
    let err = home.fails(2, &["up", &config]);
    assert!(
        err.contains("policies.rhai:2:1: rule `slow`: unknown option `evry`"),
        "{err}"
    );
    assert_eq!(home.pid("api"), pid);
    assert!(
        home.ok(&["rules"]).contains("spin"),
        "the loaded rules stay"
    );

    // A call to a method that does not exist is refused where it is written, too.
    std::fs::write(
        &config,
        format!("{app}\nrule(\"hot\", #{{ every: \"1s\" }}, |ctx| {{ ctx.app(\"api\").restrat(\"x\") }});\n"),
    )
    .unwrap();
    let err = home.fails(2, &["up", &config]);
    assert!(
        err.contains("policies.rhai:2:54: no method `restrat` (did you mean `restart`?)"),
        "{err}"
    );
    // A good one replaces the loaded rules, and `up` says so.
    std::fs::write(
        &config,
        format!("{app}\nrule(\"calm\", #{{ every: \"1h\" }}, |ctx| {{ }});\n"),
    )
    .unwrap();
    let out = home.ok(&["up", &config]);
    assert!(
        out.contains("rules `spin`, `oops` replaced by `calm`"),
        "{out}"
    );
}

#[test]
fn an_exit_hook_writes_to_the_journal_and_rules_come_back_with_the_daemon() {
    let home = Home::new();
    let config = home.file("policies.rhai");
    std::fs::write(
        &config,
        format!(
            r#"app(#{{ name: "api", script: "{}" }});
rule("exit-note", #{{ on: "exit", app: "api" }}, |ctx| {{
    ctx.note(`api #${{ctx.event.instance}} exited by signal ${{ctx.event.signal}}`);
}});
"#,
            fixture("forever.sh")
        ),
    )
    .unwrap();
    home.ok(&["up", &config]);
    home.wait_online("api");
    home.ok(&["restart", "api"]);
    const NOTE: &str = "note: api #0 exited by signal 2";
    let notes = |home: &Home| {
        let history = home.ok(&["history", "api"]);
        history.lines().filter(|l| l.contains(NOTE)).count()
    };
    wait_for("the exit note", Duration::from_secs(5), || {
        (notes(&home) == 1).then_some(())
    });
    let history = home.ok(&["history", "api"]);
    assert!(
        history.contains(&format!("{NOTE}  ← rule exit-note\n")),
        "the cause is the rule, the text is said once: {history}"
    );

    // The script is in the journal: a new daemon runs the same rule.
    home.stop_daemon();
    home.ok(&["ping"]);
    home.wait_online("api");
    assert!(
        home.ok(&["rules"])
            .contains("exit-note (on exit of api, active)")
    );
    let before = notes(&home);
    home.ok(&["restart", "api"]);
    wait_for("a note from the new daemon", Duration::from_secs(5), || {
        (notes(&home) == before + 1).then_some(())
    });
}
