//! `pmx history`: filters by instance, time and count, and `--follow`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use pmx_tests::{Home, fixture};
use serde_json::Value;

#[test]
fn history_filters_by_instance_time_and_count() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "h", "-i", "2"]);
    home.wait_online("h");
    home.ok(&["restart", "1"]);
    let all = home.history("h");
    let one: Vec<Value> = home
        .ok(&["history", "h", "--instance", "1", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!one.is_empty() && one.len() < all.len());
    assert!(one.iter().all(|e| e["instance"] == 1));
    let last3: Vec<Value> = home
        .ok(&["history", "h", "--limit", "3", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(last3, all[all.len() - 3..]);
    for filtered in [&["--limit", "0"][..], &["--limit", "0", "--instance", "1"]] {
        let args = [&["history", "h", "--json"][..], filtered].concat();
        assert_eq!(home.ok(&args), "", "{filtered:?} shows nothing");
    }
    assert_eq!(
        home.ok(&["history", "h", "--since", "1h", "--json"])
            .lines()
            .count(),
        all.len()
    );
    assert_eq!(
        home.ok(&["history", "h", "--until", "1h", "--json"]),
        "",
        "nothing is an hour old"
    );
    assert_eq!(
        home.ok(&["history", "h", "--since", "2999-01-01T00:00:00Z"]),
        ""
    );
    let stderr = home.fails(2, &["history", "h", "--since", "soon"]);
    assert!(stderr.contains("invalid --since"), "{stderr}");
    let text = home.ok(&["history", "h", "--instance", "1"]);
    assert!(
        text.contains("restart") && text.contains("pmx restart by uid"),
        "{text}"
    );
}

#[test]
fn history_follow_streams_new_events() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "f"]);
    home.wait_online("f");
    let head = home.history("f").last().unwrap()["seq"].as_u64().unwrap();
    let mut follower = home
        .command(&["history", "f", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    // First what happened so far...
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the past events");
    assert_eq!(first["kind"]["type"], "app_created");
    // ...then what happens next.
    home.ok(&["restart", "f"]);
    let online_again = loop {
        let event = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a new event streamed");
        if event["seq"].as_u64().unwrap() > head && event["kind"]["to"] == "online" {
            break event;
        }
    };
    assert_eq!(online_again["cause"]["by"], "process");
    follower.kill().unwrap();
    pmx_tests::wait_within(&mut follower, "history --follow");
    // The daemon noticed the follower left and keeps serving.
    home.ok(&["ping"]);
}
