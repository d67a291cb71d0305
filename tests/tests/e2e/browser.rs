//! The web dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core
//! from `tests/browser/`): the app list, an app's history timeline with its crash and
//! restart, and the token that actions need.

use pmx_tests::Within;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pmx_tests::{Home, fixture, tool_available, wait_for};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

fn driver() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

#[test]
fn the_dashboard_shows_the_apps_and_a_crash_on_the_timeline_and_refuses_actions_without_the_token()
{
    let installed =
        Path::new(CHROMIUM).exists() && driver().join("node_modules/playwright-core").exists();
    if !tool_available("chromium and playwright-core", installed) {
        return;
    }
    let (home, port) = Home::with_dashboard();
    home.ok(&["start", &fixture("forever.sh"), "--name", "steady"]);
    let marker = home.file("crashed-once");
    home.ok(&[
        "start",
        &fixture("crash_once.sh"),
        "--name",
        "flaky",
        "--",
        &marker,
    ]);
    // The first run crashes after 1.5 s; the restart stays up.
    let pid = wait_for("flaky's restart", Duration::from_secs(15), || {
        let p = home.proc("flaky");
        (p["pm2_env"]["restart_time"] == 1 && p["pm2_env"]["status"] == "online")
            .then(|| p["pid"].as_u64().unwrap_or(0) as u32)
    });
    let token = home.token();
    let url = format!("http://127.0.0.1:{port}/");
    let out = Command::new("node")
        .arg(driver().join("dashboard.mjs"))
        .args([&url, "flaky", &token])
        .env("CHROMIUM", CHROMIUM)
        .output_within();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the driver said ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(seen.get("error").is_none(), "{seen:#}");
    let apps: Vec<&str> = seen["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(apps, ["steady", "flaky"], "{seen:#}");
    assert!(
        seen["first_chart_points"].as_u64() >= Some(2),
        "charts start with the recent samples: {seen:#}"
    );
    let timeline = seen["timeline"].as_array().unwrap();
    let titled = |class: &str, words: &str| {
        timeline.iter().any(|p| {
            p["class"].as_str().unwrap().contains(class)
                && p["title"].as_str().unwrap().contains(words)
        })
    };
    assert!(
        titled("tl-crash", "exited with code 3") && titled("tl-crash", "(crash)"),
        "the crash with its cause: {seen:#}"
    );
    assert!(
        titled("tl-restart", "restart delay elapsed"),
        "the restart: {seen:#}"
    );
    assert!(titled("tl-online", "spawned pid"), "{seen:#}");
    assert!(
        seen["logs"]
            .as_str()
            .unwrap()
            .contains("steady after the crash"),
        "{seen:#}"
    );
    let without = seen["without_token"].as_str().unwrap();
    assert!(without.contains("need the dashboard token"), "{without}");
    assert_eq!(seen["rows_without_token"], 0, "{seen:#}");
    assert_eq!(seen["status_without_token"], 401);
    let refused = seen["refused"].as_str().unwrap();
    assert!(refused.contains("refused"), "{refused}");
    assert!(
        seen["accepted"]
            .as_str()
            .unwrap()
            .contains("restart flaky: done")
    );
    let journal = home.ok(&["history", "flaky"]);
    let via = journal
        .lines()
        .filter(|l| l.contains("via dashboard from 127.0.0.1"))
        .count();
    assert!(
        via >= 1,
        "one restart, by the button with the token: {journal}"
    );
    assert_ne!(home.pid("flaky"), pid);
}
