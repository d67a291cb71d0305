//! PM2 command lines as PM2 users type them: `start SCRIPT -f` adds an instance (a second
//! `start SCRIPT` without it is refused), PM2's flag aliases and the PM2.io flags pmx has
//! nothing to do for, and config files read as PM2 reads them (`--only`, stdin, JavaScript).

use pmx_tests::Within;
use std::time::Duration;

use pmx_tests::{Home, environ, fixture, wait_for};

fn restarts(home: &Home, name: &str) -> u64 {
    home.proc(name)["pm2_env"]["restart_time"].as_u64().unwrap()
}

#[test]
fn start_force_adds_an_instance_and_a_second_start_is_refused_without_it() {
    let home = Home::new();
    let script = fixture("forever.sh");
    home.ok(&["start", &script, "--name", "echo"]);
    let err = home.fails(1, &["start", &script, "--name", "echo"]);
    assert!(err.contains("already exists"), "{err}");
    home.ok(&["start", &script, "--name", "echo", "-f"]);
    home.ok(&["start", &script, "--name", "echo", "--force"]);
    let ids: Vec<u64> = home
        .jlist()
        .iter()
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2]);
    wait_for("every instance online", Duration::from_secs(10), || {
        (home.in_status("online").len() == 3).then_some(())
    });
    home.ok(&["stop", "1"]);
    let stopped: Vec<u64> = home
        .in_status("stopped")
        .iter()
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(stopped, [1]);
}

#[test]
fn pm2_flag_spellings_are_understood_and_pm2_io_flags_change_nothing() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "a",
        "-c",
        "0 0 * * *",
        "--disable-logs",
        "-x",
        "--no-pmx",
        "--no-automation",
        "--no-vizion",
        "--trace",
        "--deep-monitoring",
        "--shutdown-with-message",
    ]);
    home.wait_online("a");
    let env = &home.proc("a")["pm2_env"];
    assert_eq!(env["cron_restart"], "0 0 * * *", "{env}");
    assert_eq!(env["pm_out_log_path"], "/dev/null", "{env}");
    assert_eq!(env["pm_err_log_path"], "/dev/null", "{env}");
    assert_eq!(env["shutdown_with_message"], true, "{env}");
    assert_eq!(env["watch"], false, "{env}");
    assert_eq!(env["namespace"], "default", "{env}");
    // -i below zero is every core but that many, never fewer than one, as PM2 clamps it.
    home.ok(&["start", &fixture("forever.sh"), "--name", "b", "-i", "-100"]);
    assert_eq!(home.jlist().len(), 2);
}

/// Writes `text` to `name` in the home and returns its path.
fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.file(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn several_scripts_in_one_start_are_several_apps() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), &fixture("ticker.sh")]);
    let names: Vec<String> = home
        .jlist()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["forever", "ticker"]);
    let err = home.fails(
        2,
        &[
            "start",
            &fixture("forever.sh"),
            &fixture("ticker.sh"),
            "-n",
            "x",
        ],
    );
    assert!(err.contains("--name names one app"), "{err}");
}

#[test]
fn json_files_are_read_as_pm2_reads_them() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    // PM2 evaluates a .json file as JavaScript: comments, unquoted keys, code; `pm2:` is the
    // old name of `apps`; numbers may be strings.
    let js_like = write(
        &home,
        "js-like.json",
        &format!(
            "// apps\n[{{ name: 'a', script: ['{forever}'].join(''), max_restarts: '50' }}]\n// end"
        ),
    );
    home.ok(&["start", &js_like]);
    home.wait_online("a");
    assert_eq!(home.proc("a")["pm2_env"]["max_restarts"], 50);
    let old_layout = write(
        &home,
        "old.json",
        &format!(r#"{{"pm2": [{{"name": "b", "script": "{forever}", "instances": "2"}}]}}"#),
    );
    home.ok(&["start", &old_layout]);
    home.wait_online("b");
    assert_eq!(home.jlist().len(), 3, "a, and b's two instances");
    // A config on stdin (`cat app.json | pm2 start -`), its paths from the current directory.
    let dir = std::path::Path::new(&forever)
        .parent()
        .unwrap()
        .to_path_buf();
    home.ok_with_input(
        &["start", "-"],
        "[{ name: 'piped', script: './forever.sh' }]",
        &dir,
    );
    home.wait_online("piped");
    assert_eq!(home.proc("piped")["pm2_env"]["pm_exec_path"], forever);
    // Broken JSON that is no JavaScript either is said at its place.
    let broken = write(&home, "broken.json", "{\"apps\": [}");
    let err = home.fails(2, &["start", &broken]);
    assert!(err.contains("broken.json:1:11: invalid JSON"), "{err}");
}

#[test]
fn start_of_a_config_restarts_its_running_apps_and_start_or_reload_reloads_them() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    let file = write(
        &home,
        "eco.json",
        &format!(r#"{{"apps": [{{"name": "a", "script": "{forever}"}}]}}"#),
    );
    home.ok(&["startOrRestart", &file]);
    let first = home.wait_online("a");
    assert_eq!(restarts(&home, "a"), 0);
    home.ok(&["start", &file]);
    let second = home.wait_online("a");
    assert_ne!(first, second, "start FILE restarts what runs, as PM2");
    assert_eq!(restarts(&home, "a"), 1);
    home.ok(&["startOrReload", &file]);
    wait_for("the reload", Duration::from_secs(10), || {
        (restarts(&home, "a") == 2 && home.status("a") == "online").then_some(())
    });
    assert_ne!(home.pid("a"), second);
}

#[test]
fn only_and_a_config_on_stdin_pick_apps_of_a_config_for_every_verb() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    let text = format!(
        r#"{{"apps": [{{"name": "a", "script": "{forever}"}}, {{"name": "b", "script": "{forever}"}}]}}"#
    );
    let file = write(&home, "eco.json", &text);
    home.ok(&["start", &file, "--only", "a"]);
    assert_eq!(home.jlist().len(), 1);
    home.ok(&["start", &file]);
    home.ok(&["restart", &file, "--only", "b"]);
    assert_eq!(restarts(&home, "a"), 1, "start FILE restarted a");
    assert_eq!(restarts(&home, "b"), 1, "restart --only b");
    home.ok(&["stop", &file, "--only", "a"]);
    assert_eq!(home.status("a"), "stopped");
    assert_eq!(home.status("b"), "online");
    // An --only name the file does not declare is a usage error, as with `up`.
    let err = home.fails(2, &["stop", &file, "--only", "nope"]);
    assert!(err.contains("declares no app `nope`"), "{err}");
    home.ok_with_input(&["delete", "-"], &text, &home.path());
    assert!(home.jlist().is_empty());
}

#[test]
fn append_env_to_name_names_the_app_after_the_env_chosen() {
    let home = Home::new();
    let forever = fixture("forever.sh");
    let file = write(
        &home,
        "eco.json",
        &format!(
            r#"[{{"name": "web", "script": "{forever}", "append_env_to_name": true,
                 "env_dev": {{"PORT": 4000}}, "env_prod": {{"PORT": 3000}}}}]"#
        ),
    );
    home.ok(&["start", &file, "--env", "dev"]);
    home.ok(&["start", &file, "--env", "prod"]);
    home.wait_online("web-dev");
    home.wait_online("web-prod");
    assert_eq!(home.proc("web-prod")["pm2_env"]["env"]["PORT"], 3000);
    // Without --env the name is the declared one.
    home.ok(&["start", &file]);
    home.wait_online("web");
}

/// PM2's `set`/`get`/`unset`: values in `module_conf.json`; `APP.KEY` reaches the app's
/// processes (it restarts), `pm2-logrotate:KEY` is the rotation of apps without their own.
#[test]
fn set_get_unset_keep_pm2s_module_conf_and_reach_the_app() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.ok(&["unset", "all"]);
    let conf = home.path().join("module_conf.json");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    home.ok(&["start", &fixture("forever.sh"), "--name", "echo"]);
    let before = home.wait_online("echo");
    home.ok(&["set", "echo.config_var", "false"]);
    let after = home.wait_online("echo");
    assert_ne!(before, after, "the app restarts with the value");
    assert_eq!(restarts(&home, "echo"), 1);
    assert!(environ(after).contains(&"config_var=false".to_string()));
    // `jlist` shows the environment the process got, the set value included.
    assert_eq!(home.proc("echo")["pm2_env"]["env"]["config_var"], "false");
    assert_eq!(home.ok(&["get", "echo.config_var"]).trim(), "false");
    home.ok(&["multiset", "echo.a 1 echo.b 2"]);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("\"b\": \"2\""), "{text}");
    assert_eq!(restarts(&home, "echo"), 2);

    // A value that does not read is refused, and nothing is written.
    let err = home.fails(2, &["set", "pm2-logrotate:max_size", "huge"]);
    assert!(
        err.contains("pm2-logrotate:max_size: expected a size"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    // `all` is a key like any other: nothing restarts.
    home.ok(&["set", "all", "x"]);
    assert_eq!(restarts(&home, "echo"), 2);

    // Rotation at 1 KiB for apps started from now on.
    home.ok(&["set", "pm2-logrotate:max_size", "1K"]);
    home.ok(&[
        "start",
        "yes line | head -c 20000; sleep 30",
        "--name",
        "chatty",
    ]);
    wait_for("a rotated log", Duration::from_secs(10), || {
        std::fs::read_dir(home.path().join("logs"))
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("chatty-out__"))
            .then_some(())
    });

    home.ok(&["unset", "echo.config_var"]);
    let last = home.wait_online("echo");
    assert!(!environ(last).iter().any(|v| v.starts_with("config_var=")));
    assert!(
        home.fails(1, &["get", "echo.config_var"])
            .contains("is not set")
    );
}

/// PM2's `PM2_PID_FILE_PATH`: the daemon writes its pid there too, and removes it at the end.
#[test]
fn pid_file_path_from_the_environment_holds_the_daemons_pid() {
    let home = Home::new();
    let path = home.file("elsewhere.pid");
    let out = home
        .command(&["ping"])
        .env("PM2_PID_FILE_PATH", &path)
        .output_within();
    assert!(out.status.success());
    assert_eq!(Some(pmx_tests::read_pid(&path)), home.daemon_pid());
    home.ok(&["kill"]);
    wait_for("the pid file removed", Duration::from_secs(10), || {
        (!std::path::Path::new(&path).exists()).then_some(())
    });
    // Without the variable, PM2's place: `pm2.pid` in the home.
    home.ok(&["ping"]);
    let default = home.file("pm2.pid");
    assert_eq!(Some(pmx_tests::read_pid(&default)), home.daemon_pid());
}

/// As PM2: an unhandled promise rejection in a Node app is logged, not fatal, in fork and
/// in cluster mode alike.
#[test]
fn an_unhandled_rejection_is_logged_and_the_node_app_keeps_running() {
    let home = Home::new();
    home.ok(&["start", &fixture("rejection.js"), "--name", "fork"]);
    home.ok(&[
        "start",
        &fixture("rejection.js"),
        "--name",
        "clu",
        "-i",
        "1",
    ]);
    for (name, log) in [
        ("fork", "logs/fork-error.log"),
        ("clu", "logs/clu-error.log"),
    ] {
        let pid = home.wait_online(name);
        let log = home.file(log);
        wait_for("the rejection logged", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains("nobody caught me").then_some(())
        });
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("You have triggered an unhandledRejection"),
            "{text}"
        );
        assert_eq!(home.pid(name), pid, "{name} kept running");
        assert_eq!(restarts(&home, name), 0);
    }
}

/// PM2's `restart` with options: `--cron-restart 0` removes the cron, `--node-args` sets the
/// interpreter's arguments; a config revision like `--update-env`, and a restart counted.
#[test]
fn restart_takes_pm2s_options_and_changes_the_spec() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "tick",
        "-c",
        "0 3 * * *",
    ]);
    assert_eq!(home.proc("tick")["pm2_env"]["cron_restart"], "0 3 * * *");
    let out = home.ok(&["restart", "tick", "--cron-restart", "0"]);
    assert!(out.contains("cron_restart 0 3 * * * → unset"), "{out}");
    let p = home.proc("tick");
    assert!(p["pm2_env"]["cron_restart"].is_null(), "{p}");
    assert_eq!(p["pm2_env"]["restart_time"], 1);
    assert_eq!(
        home.proc("tick")["pm2_env"]["node_args"],
        serde_json::json!([])
    );
    let out = home.ok(&["restart", "tick", "--node-args", "--harmony"]);
    assert!(out.contains("node_args [] → [\"--harmony\"]"), "{out}");
    assert_eq!(
        home.proc("tick")["pm2_env"]["node_args"],
        serde_json::json!(["--harmony"])
    );
    // PM2's `--node-args=null`: none at all, not even `[]`.
    let out = home.ok(&["restart", "tick", "--node-args=null"]);
    assert!(out.contains("node_args [\"--harmony\"] → unset"), "{out}");
    let p = home.proc("tick");
    assert!(p["pm2_env"].get("node_args").is_none(), "{p}");
    let err = home.fails(2, &["restart", "tick", "--cron-restart", "nope"]);
    assert!(err.contains("--cron-restart"), "{err}");
}

/// PM2's rename: `restart ID --name NEW` and `start ID --name NEW` keep the app's ids and
/// settings, count a restart, and write the new name's log files; a taken name is refused.
#[test]
fn restart_and_start_with_a_name_rename_the_app() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "old", "-i", "2"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "other"]);
    home.wait_online("old");
    home.ok(&["restart", "0", "--name", "new"]);
    let list = home.jlist();
    let names: Vec<(&str, u64)> = list
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["pm_id"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("new", 0), ("new", 1), ("other", 2)], "{list:?}");
    assert_eq!(restarts(&home, "new"), 1);
    home.wait_online("new");
    assert!(std::path::Path::new(&home.file("logs/new-out-0.log")).exists());
    let err = home.fails(1, &["restart", "new", "--name", "other"]);
    assert!(err.contains("an app has that name"), "{err}");
    home.ok(&["stop", "new"]);
    home.ok(&["start", "new", "--name", "again"]);
    assert!(home.wait_online("again") > 0);
    let history = home.ok(&["history", "all"]);
    assert!(history.contains("rename of new to again"), "{history}");
}

/// PM2's vizion: the git version of the app's directory is in `jlist` (`versioning`) and
/// `describe`; `--no-vizion` reads none.
#[test]
fn the_git_version_of_the_apps_directory_is_shown_unless_no_vizion() {
    let home = Home::new();
    let repo = home.file("repo");
    let git = format!("{repo}/.git");
    std::fs::create_dir_all(format!("{git}/refs/heads")).unwrap();
    std::fs::write(format!("{git}/HEAD"), "ref: refs/heads/main\n").unwrap();
    let url = "https://github.com/me/app.git";
    std::fs::write(
        format!("{git}/config"),
        format!("[remote \"origin\"]\n\turl = {url}\n"),
    )
    .unwrap();
    let id = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(
        format!("{git}/packed-refs"),
        format!("# pack-refs\n{id} refs/heads/main\n"),
    )
    .unwrap();
    std::fs::create_dir_all(format!("{repo}/src")).unwrap();
    let cwd = format!("{repo}/src");
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "v",
        "--cwd",
        &cwd,
    ]);
    home.wait_online("v");
    let env = &home.proc("v")["pm2_env"];
    assert_eq!(env["vizion"], true);
    assert_eq!(env["versioning"]["url"], url, "{env}");
    assert_eq!(env["versioning"]["revision"], id);
    assert_eq!(env["versioning"]["branch"], "main");
    let described = home.ok(&["describe", "v"]);
    assert!(described.contains("main@01234567"), "{described}");
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "n",
        "--cwd",
        &cwd,
        "--no-vizion",
    ]);
    let env = &home.proc("n")["pm2_env"];
    assert_eq!(env["vizion"], false);
    assert!(env["versioning"].is_null(), "{env}");
}

/// PM2's `PM2_LOG_DATE_FORMAT` (`PMX_LOG_DATE_FORMAT` first) dates the CLI's messages; a
/// command that had to start the daemon says so, `jlist` never does.
#[test]
fn messages_are_dated_with_the_log_date_format_and_a_daemon_start_is_said() {
    let home = Home::new();
    let out = home.command(&["jlist"]).output_within();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    home.ok(&["kill"]);
    let out = home
        .command(&["start", &fixture("forever.sh"), "--name", "d"])
        .env("PM2_LOG_DATE_FORMAT", "YYYY-MM-DD [at] HH")
        .output_within();
    let text = String::from_utf8_lossy(&out.stdout);
    let dated = |line: &str| {
        let b = line.as_bytes();
        b.len() > 17 && b[..4].iter().all(u8::is_ascii_digit) && line[10..].starts_with(" at ")
    };
    let said: Vec<&str> = text.lines().filter(|l| l.contains("[PMX]")).collect();
    assert!(said.len() >= 2, "{text}");
    assert!(said.iter().all(|l| dated(l)), "{text}");
    assert!(said[0].contains("started the daemon in"), "{text}");
    let plain = home.ok(&["stop", "d"]);
    assert!(
        plain.contains("\n[PMX] stop d") || plain.starts_with("[PMX] stop d"),
        "{plain}"
    );
}

/// PM2's `--pid FILE`: each instance writes its pid to FILE with `-ID` before the extension
/// while it runs; the file goes when the instance stops.
#[test]
fn pid_files_hold_each_instances_pid_while_it_runs() {
    let home = Home::new();
    let template = home.file("app.pid");
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "p",
        "-i",
        "2",
        "-p",
        &template,
    ]);
    home.wait_online("p");
    let list = home.jlist();
    for p in &list {
        let id = p["pm_id"].as_u64().unwrap();
        let file = home.file(&format!("app-{id}.pid"));
        assert_eq!(p["pm2_env"]["pm_pid_path"], file.as_str());
        let pid = wait_for("the pid file", Duration::from_secs(5), || {
            std::fs::read_to_string(&file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        });
        assert_eq!(Some(pid), p["pid"].as_u64());
    }
    home.ok(&["stop", "p"]);
    for id in 0..2 {
        assert!(!std::path::Path::new(&home.file(&format!("app-{id}.pid"))).exists());
    }

    // A rolling reload: the old process exits after the new one wrote its pid; the file
    // keeps the new one.
    let port = pmx_tests::free_port().to_string();
    let node = home.file("node.pid");
    home.ok(&[
        "start",
        &fixture("cluster.js"),
        "--name",
        "web",
        "-i",
        "1",
        "-p",
        &node,
        "--env",
        &format!("APP_PORT={port}"),
    ]);
    let before = home.wait_online("web");
    home.ok(&["reload", "web"]);
    let after = home.wait_online("web");
    assert_ne!(before, after);
    let file = home.file("node-2.pid");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        after.to_string(),
        "{file}"
    );
}

/// Without `--pid`, PM2's place: `PMX_HOME/pids/NAME-ID.pid`, private, gone once stopped. And
/// PM2's `jlist` shows an app's `set` values under its name in `env` (`{}` when it has none),
/// as its processes get them.
#[test]
fn pid_files_are_in_the_homes_pids_by_default_and_env_names_the_apps_set_values() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "api"]);
    let pid = home.wait_online("api");
    let file = home.path().join("pids/api-0.pid");
    let p = home.proc("api");
    assert_eq!(p["pm2_env"]["pm_pid_path"], file.to_str().unwrap());
    assert_eq!(p["pm2_env"]["env"]["api"], "{}");
    let written = wait_for("the pid file", Duration::from_secs(5), || {
        std::fs::read_to_string(&file)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    });
    assert_eq!(written, pid);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    home.ok(&["stop", "api"]);
    assert!(!file.exists());

    home.ok(&["set", "api:color", "blue"]);
    home.ok(&["restart", "api"]);
    let pid = home.wait_online("api");
    let env = environ(pid);
    assert!(env.contains(&"color=blue".to_string()), "{env:?}");
    assert!(
        env.contains(&r#"api={"color":"blue"}"#.to_string()),
        "{env:?}"
    );
    assert_eq!(
        home.proc("api")["pm2_env"]["env"]["api"],
        r#"{"color":"blue"}"#
    );
}

/// As PM2's agent: every Node app's heap and event loop figures, and what the app's own
/// @pm2/io agent sends through process.send, are in `jlist` (`axm_monitor`) and `describe`,
/// in fork and in cluster mode; a message too large is dropped. `PM2_DEEP_MONITORING=true`
/// adds HTTP and garbage collection figures.
#[test]
fn node_apps_report_their_figures_and_their_agents_messages() {
    let home = Home::new();
    let port = pmx_tests::free_port().to_string();
    let out = home
        .command(&[
            "start",
            &fixture("agent.js"),
            "--name",
            "fork",
            "--env",
            &format!("PORT={port}"),
        ])
        .env("PM2_DEEP_MONITORING", "true")
        .output_within();
    assert!(out.status.success(), "{out:?}");
    // The shim's figures and the app's own, in every instance (each comes in its own time:
    // on a busy machine a second's share of messages may go to the burst).
    let monitor = |home: &Home, name: &str| {
        let keys = ["Heap Size", "jobs done"];
        wait_for(
            &format!("{name}: {keys:?}"),
            Duration::from_secs(15),
            || {
                let list = home.jlist();
                let all: Vec<&serde_json::Value> =
                    list.iter().filter(|p| p["name"] == name).collect();
                let ok = !all.is_empty()
                    && all.iter().all(|p| {
                        (keys.iter()).all(|key| p["pm2_env"]["axm_monitor"][key].is_object())
                    });
                ok.then(|| all[0]["pm2_env"].clone())
            },
        )
    };
    let env = monitor(&home, "fork");
    for _ in 0..5 {
        pmx_tests::http(port.parse().unwrap(), "GET", "/", &[]);
    }
    assert_eq!(env["deep_monitoring"], true);
    assert_eq!(env["axm_monitor"]["Heap Size"]["unit"], "MiB");
    assert!(
        env["axm_monitor"]["Event Loop Latency p95"].is_object(),
        "{env}"
    );
    assert!(
        env["axm_monitor"]["huge"].is_null(),
        "a message too large is dropped"
    );
    assert_eq!(env["axm_options"]["module_name"], "fork");
    // Of a burst, the daemon takes so many messages a second: not the last one (on a busy
    // machine the app's own figures may take the second's whole share: none of the burst).
    let burst = env["axm_monitor"]["burst"]["value"].as_u64();
    assert!(burst.is_none_or(|b| b < 999), "{env}");
    wait_for("the requests counted", Duration::from_secs(15), || {
        let http = home.proc("fork")["pm2_env"]["axm_monitor"]["HTTP"]["value"].as_f64();
        (http? > 0.0).then_some(())
    });
    let described = home.ok(&["describe", "fork"]);
    assert!(described.contains("jobs done"), "{described}");

    let port = pmx_tests::free_port().to_string();
    home.ok(&[
        "start",
        &fixture("agent.js"),
        "--name",
        "workers",
        "-i",
        "2",
        "--env",
        &format!("PORT={port}"),
    ]);
    let env = monitor(&home, "workers");
    let burst = env["axm_monitor"]["burst"]["value"].as_u64();
    assert!(burst.is_none_or(|b| b < 999), "{env}");
    assert!(env.get("deep_monitoring").is_none(), "{env}");
}

/// As PM2: a Node script with a `.map` file beside it gets stack traces through it, unless
/// `--disable-source-map-support` says not to.
#[test]
fn source_maps_are_used_when_the_script_has_one() {
    let home = Home::new();
    let script = fixture("mapped.js");
    for (name, flag) in [
        ("auto", None),
        ("off", Some("--disable-source-map-support")),
    ] {
        let mut args = vec!["start", &script, "--name", name, "--no-autorestart"];
        args.extend(flag);
        home.ok(&args);
    }
    let log = |name: &str| {
        let path = home.file(&format!("logs/{name}-error.log"));
        wait_for("the stack trace", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&path).ok()?;
            text.contains("thrown in the compiled file").then_some(text)
        })
    };
    let auto = log("auto");
    assert!(auto.contains("mapped.ts:2"), "{auto}");
    let off = log("off");
    assert!(
        off.contains("mapped.js:2") && !off.contains("mapped.ts"),
        "{off}"
    );
}
