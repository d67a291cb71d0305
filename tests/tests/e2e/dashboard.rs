//! The daemon's HTTP listener: `/metrics` in Prometheus's format, the JSON API, the token
//! rules, and its settings (`daemon.toml`, `--metrics`).

use pmx_tests::Within;
use std::time::Duration;

use pmx_tests::{Home, fixture, free_port, http, wait_for};

/// The value of the metric line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_show_every_instance_and_the_daemon_in_prometheus_format() {
    let (home, port) = Home::with_dashboard();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    home.ok(&[
        "start",
        &fixture("forever.sh"),
        "--name",
        "web",
        "-i",
        "2",
        "--max-memory-restart",
        "1K",
    ]);
    home.wait_online("tick");
    let answer = http(port, "GET", "/metrics", &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.head.contains("openmetrics-text"), "{}", answer.head);
    // The memory limit is far below any shell: the policy restarts `web`'s instances.
    let text = wait_for(
        "policy actions and log lines",
        Duration::from_secs(20),
        || {
            let text = http(port, "GET", "/metrics", &[]).body;
            let acted = metric(
            &text,
            r#"pmx_instance_policy_actions_total{app="web",id="1",policy="max_memory_restart"}"#,
        )
        .is_some_and(|n| n >= 1.0);
            let wrote = metric(
                &text,
                r#"pmx_instance_log_lines_total{app="tick",id="0",stream="out"}"#,
            )
            .is_some_and(|n| n >= 5.0);
            (acted && wrote).then_some(text)
        },
    );
    assert_eq!(
        metric(
            &text,
            r#"pmx_instance_status{app="tick",id="0",status="online"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"pmx_instance_status{app="tick",id="0",status="errored"}"#
        ),
        Some(0.0)
    );
    assert!(metric(&text, r#"pmx_instance_memory_bytes{app="tick",id="0"}"#).unwrap() > 0.0);
    assert!(metric(&text, r#"pmx_instance_uptime_seconds{app="tick",id="0"}"#).is_some());
    assert!(metric(&text, r#"pmx_instance_restarts_total{app="web",id="2"}"#).unwrap() >= 1.0);
    let err_bytes = r#"pmx_instance_log_bytes_total{app="tick",id="0",stream="err"}"#;
    assert!(metric(&text, err_bytes).unwrap() > 0.0, "{text}");
    for daemon in [
        "pmx_daemon_cpu_seconds_total",
        "pmx_daemon_resident_memory_bytes",
        "pmx_journal_size_bytes",
        "pmx_journal_events_total",
        "pmx_journal_events_per_second",
    ] {
        assert!(metric(&text, daemon).is_some(), "no {daemon} in\n{text}");
    }
    assert!(metric(&text, "pmx_daemon_resident_memory_bytes").unwrap() > 1e6);
    assert!(metric(&text, "pmx_journal_events_total").unwrap() > 5.0);
    // A restart by hand shows at the next scrape.
    let before = metric(&text, r#"pmx_instance_restarts_total{app="tick",id="0"}"#).unwrap();
    home.ok(&["restart", "tick"]);
    let after = metric(
        &http(port, "GET", "/metrics", &[]).body,
        r#"pmx_instance_restarts_total{app="tick",id="0"}"#,
    );
    assert_eq!(after, Some(before + 1.0));
}

#[test]
fn the_api_serves_values_and_actions_only_with_the_token() {
    let (home, port) = Home::with_dashboard();
    home.command(&["start", &fixture("ticker.sh"), "--name", "tick"])
        .env("DB_PASSWORD", "hunter2-secret")
        .output_within();
    let pid = home.wait_online("tick");
    let token = home.token();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    // Without the token nothing that carries values is served, from any address.
    for path in [
        "/api/apps",
        "/api/apps/tick",
        "/api/apps/tick/history",
        "/api/apps/tick/logs",
        "/api/apps/all/history",
    ] {
        let refused = http(port, "GET", path, &[]);
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
        assert!(!refused.body.contains("hunter2"), "{path}");
        // With it, env values are still never served: only `pmx env` shows them.
        let served = http(port, "GET", path, &auth);
        assert!(!served.body.contains("hunter2"), "{path}: {}", served.body);
    }
    for open in ["/metrics", "/api/samples", "/"] {
        let answer = http(port, "GET", open, &[]);
        assert_eq!(answer.status, 200, "{open}");
        assert!(!answer.body.contains("hunter2"), "{open}");
    }
    let apps = http(port, "GET", "/api/apps", &auth).json();
    assert_eq!(apps[0]["name"], "tick");
    assert_eq!(apps[0]["pid"], pid);
    let app = http(port, "GET", "/api/apps/tick", &auth).json();
    assert_eq!(app["spec"]["name"], "tick");
    assert_eq!(app["instances"].as_array().unwrap().len(), 1);
    // The page shows the settings in the user's words, not the spec's internal fields.
    let settings = app["settings"].as_array().unwrap();
    assert!(
        settings
            .iter()
            .any(|s| s[0] == "kill timeout" && s[1] == "1600 ms"),
        "{app}"
    );
    assert_eq!(http(port, "GET", "/api/apps/nope", &auth).status, 404);
    // The last minute of samples, so charts start filled: several readings of the live app.
    let readings = wait_for("samples of tick", Duration::from_secs(5), || {
        let samples = http(port, "GET", "/api/samples", &[]).json();
        let readings = samples[0]["samples"].as_array()?.clone();
        (readings.len() >= 3 && samples[0]["id"] == 0).then_some(readings)
    });
    let times: Vec<u64> = readings.iter().map(|r| r[0].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    assert!(
        readings.iter().all(|r| r[2].as_u64().unwrap() > 0),
        "{readings:?}"
    );
    let history = http(port, "GET", "/api/apps/tick/history", &auth).json();
    let events = history["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["class"] == "online" && e["because"] == "process"),
        "{history}"
    );
    // The time window and the limit filter what the timeline gets.
    let at = |e: &serde_json::Value| e["at"].as_u64().unwrap();
    let (first, last) = (at(&events[0]), at(events.last().unwrap()));
    let after = format!("/api/apps/tick/history?since={}", last + 1);
    assert_eq!(
        http(port, "GET", &after, &auth).json()["events"],
        serde_json::json!([])
    );
    let before = format!("/api/apps/tick/history?until={}", first + 1);
    let early = http(port, "GET", &before, &auth).json();
    assert!(!early["events"].as_array().unwrap().is_empty());
    assert!(
        early["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| at(e) <= first)
    );
    let two = http(port, "GET", "/api/apps/tick/history?limit=2", &auth).json();
    assert_eq!(
        two["events"].as_array().unwrap()[..],
        events[events.len() - 2..]
    );
    let logs = wait_for("log lines over HTTP", Duration::from_secs(5), || {
        let logs = http(port, "GET", "/api/apps/tick/logs?lines=3", &auth).json();
        let out = logs["sources"][0]["lines"].as_array()?.clone();
        (out.len() == 3).then_some(out)
    });
    assert!(logs[2].as_str().unwrap().starts_with("tick "), "{logs:?}");

    // Without the token, or with a wrong one, an action is refused and nothing happens.
    let refused = http(port, "POST", "/api/apps/tick/restart", &[]);
    assert_eq!(refused.status, 401);
    assert!(refused.json()["error"].as_str().unwrap().contains("token"));
    let wrong = [("Authorization", "Bearer 0123456789abcdef0123456789abcdef")];
    assert_eq!(
        http(port, "POST", "/api/apps/tick/stop", &wrong).status,
        401
    );
    assert_eq!(home.pid("tick"), pid, "a refused action did nothing");

    let restarted = http(port, "POST", "/api/apps/tick/restart", &auth);
    assert_eq!(restarted.status, 200, "{}", restarted.body);
    let new_pid = restarted.json()["processes"][0]["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);
    assert_eq!(home.pid("tick"), new_pid);
    // The exit a restart (a stop) causes is drawn as a stop, never as a crash.
    let history = http(port, "GET", "/api/apps/tick/history", &auth).json();
    let exits: Vec<&serde_json::Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"]["type"] == "exited")
        .collect();
    assert!(!exits.is_empty(), "{history}");
    assert!(exits.iter().all(|e| e["class"] == "stopped"), "{history}");
    let journal = home.ok(&["history", "tick"]);
    assert!(
        journal.contains("pmx restart via dashboard from 127.0.0.1"),
        "{journal}"
    );
    assert_eq!(http(port, "POST", "/api/apps/tick/stop", &auth).status, 200);
    assert_eq!(home.status("tick"), "stopped");
    assert_eq!(
        http(port, "POST", "/api/apps/tick/start", &auth).status,
        200
    );
    let before_reload = home.wait_online("tick");
    // An app without `listen` is restarted by a reload, and the answer says so.
    let reloaded = http(port, "POST", "/api/apps/tick/reload", &auth).json();
    let note = reloaded["notes"][0].as_str().unwrap_or_default();
    assert!(note.contains("reloaded by a restart"), "{reloaded}");
    assert_ne!(home.wait_online("tick"), before_reload);
    assert_eq!(
        http(port, "POST", "/api/apps/tick/explode", &auth).status,
        404
    );
    // A port alone in daemon.toml means loopback.
    let printed = home.ok(&["dashboard"]);
    let url = format!("dashboard  http://127.0.0.1:{port}/?token={token}");
    assert!(printed.contains(&url), "{printed}");
    // A page of another site whose name resolves to 127.0.0.1 cannot read the API.
    let rebound = http(port, "GET", "/api/apps", &[("Host", "evil.example")]);
    assert_eq!(rebound.status, 403);
    // A `pmx set` value is in the process's environment: the API names its key, never
    // its value, even with the token (values leave only through `pmx env`).
    let before_set = home.pid("tick");
    home.ok(&["set", "tick.API_SECRET", "s3cr3t-value"]);
    wait_for("tick restarted by set", Duration::from_secs(10), || {
        let pid = home.pid("tick");
        (pid != 0 && pid != before_set).then_some(())
    });
    home.wait_online("tick");
    for path in ["/api/apps", "/api/apps/tick"] {
        let answer = http(port, "GET", path, &auth);
        assert_eq!(answer.status, 200, "{path}");
        assert!(
            answer.body.contains("API_SECRET"),
            "{path}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("s3cr3t-value"),
            "{path}: {}",
            answer.body
        );
    }
    assert!(
        home.ok(&["env", "tick"])
            .contains("API_SECRET=s3cr3t-value")
    );
}

#[test]
fn off_loopback_every_request_needs_the_token() {
    let home = Home::new();
    let port = free_port();
    let settings = format!("metrics = \"0.0.0.0:{port}\"\n");
    std::fs::write(home.path().join("daemon.toml"), settings).unwrap();
    home.ok(&["start", &fixture("forever.sh"), "--name", "web"]);
    let token = home.token();
    for path in ["/", "/metrics", "/api/apps"] {
        let refused = http(port, "GET", path, &[]);
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
    }
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(port, "GET", "/metrics", &[("Authorization", &bearer)]).status,
        200
    );
    // The browser's way in: the token once in the URL, then a cookie.
    let first = http(port, "GET", &format!("/?token={token}"), &[]);
    assert_eq!(first.status, 200);
    assert!(first.head.contains("pmx_token="), "{}", first.head);
    let cookie = format!("pmx_token={token}");
    let apps = http(port, "GET", "/api/apps", &[("Cookie", &cookie)]);
    assert_eq!(apps.json()[0]["name"], "web");
    // A cookie alone never carries an action (another site could make the browser send it).
    let forged = http(port, "POST", "/api/apps/web/stop", &[("Cookie", &cookie)]);
    assert_eq!(forged.status, 401);
    assert_eq!(home.status("web"), "online");
}

#[test]
fn bad_listener_settings_are_refused_with_where_and_why() {
    let home = Home::new();
    std::fs::write(
        home.path().join("daemon.toml"),
        "metrcs = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let err = home.fails(2, &["daemon"]);
    assert!(
        err.contains("daemon.toml: unknown setting `metrcs`"),
        "{err}"
    );
    std::fs::write(home.path().join("daemon.toml"), "metrics = [1]\n").unwrap();
    let err = home.fails(2, &["daemon"]);
    assert!(err.contains("must be a string"), "{err}");
    std::fs::write(home.path().join("daemon.toml"), "metrics = \n").unwrap();
    let err = home.fails(2, &["daemon"]);
    assert!(err.contains("daemon.toml"), "{err}");
    std::fs::remove_file(home.path().join("daemon.toml")).unwrap();
    let err = home.fails(2, &["daemon", "--metrics", "localhost"]);
    assert!(err.contains("--metrics"), "{err}");
    // The port is taken: the daemon says so and does not start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = home.fails(1, &["daemon", "--metrics", &addr]);
    assert!(
        err.contains(&format!("cannot serve metrics and the dashboard on {addr}")),
        "{err}"
    );
    assert!(home.daemon_pid().is_none_or(|p| !pmx_tests::alive(p)));
    // Without a listener, `pmx dashboard` says how to get one.
    let err = home.fails(1, &["dashboard"]);
    assert!(err.contains("metrics = "), "{err}");
    let err = home.fails(1, &["dashboard", "--token"]);
    assert!(err.contains("serves no dashboard"), "{err}");
    assert!(
        !home.path().join("dashboard.token").exists(),
        "no listener, no token"
    );
}
