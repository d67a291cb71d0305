//! The wire format of each protocol version is frozen: `fixtures/protocol-N.json` holds a
//! message of every request and response as protocol N writes them, and each must decode
//! with today's types and encode back to the same JSON. A CLI and a daemon that both say
//! protocol N must read each other, so a change that fails here needs `PROTOCOL_VERSION`
//! bumped (the handshake then says which side to restart) and the new version's fixture,
//! written by `cargo test -p pmx-core --test protocol -- --ignored write_the_protocol_fixture`
//! from the minimal messages below.

use std::path::PathBuf;

use pmx_core::protocol::{PROTOCOL_VERSION, Request, Response};
use serde_json::{Value, json};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("protocol-{PROTOCOL_VERSION}.json"))
}

fn spec() -> Value {
    json!({"name": "api", "script": "/srv/api/server.js", "args": ["--port", "3000"],
           "interpreter_args": ["--harmony"], "cwd": "/srv/api",
           "env": {"NODE_ENV": "production"}, "base_env": {"PATH": "/bin"}, "instances": 2})
}

/// One message of each kind, with what each needs and no more (decoding fills the rest).
fn minimal() -> Vec<(&'static str, Value)> {
    let targets = json!(["api", "1"]);
    let mut messages = vec![
        ("start", json!({"request": "start", "spec": spec()})),
        (
            "send_signal",
            json!({"request": "send_signal", "signal": 15, "targets": targets}),
        ),
        (
            "history",
            json!({"request": "history", "target": "api", "limit": 20}),
        ),
        (
            "up",
            json!({"request": "up", "apps": [spec()], "prune": true, "dry_run": false,
            "source": "/srv/pmx.rhai", "hash": "9f2c", "unchanged": "restart",
            "update_env": false, "rules": null, "renamed": [["old", "api"]]}),
        ),
        (
            "reject_config",
            json!({"request": "reject_config", "source": "/srv/x.json", "errors": "1:2: bad"}),
        ),
        (
            "revise",
            json!({"request": "revise", "targets": targets, "env": {"A": "1"},
            "options": {"cron_restart": "0 3 * * *", "interpreter_args": ["--harmony"],
                        "remove_interpreter_args": true, "watch": "Toggle", "name": "new",
                        "deep_monitoring": true}}),
        ),
        (
            "rollback",
            json!({"request": "rollback", "app": "api", "to": 3, "dry_run": true}),
        ),
        (
            "logs",
            json!({"request": "logs", "targets": targets, "follow": true}),
        ),
        (
            "scale",
            json!({"request": "scale", "target": "api", "count": {"up": 2}}),
        ),
        (
            "reload",
            json!({"request": "reload", "targets": targets, "parallel": 2}),
        ),
        ("monit", json!({"request": "monit", "app": "api"})),
        (
            "pong",
            json!({"response": "pong", "daemon_pid": 42, "version": "0.1.0",
            "started_at": 1_796_000_000_000u64, "http": "127.0.0.1:9615"}),
        ),
        (
            "history_list",
            json!({"response": "history", "events": [{"seq": 7, "at": 1, "app": "api",
            "instance": 0, "kind": {"type": "command", "verb": "restart"},
            "cause": {"by": "user", "command": "restart", "uid": 1000}}], "head": 7}),
        ),
        ("env_list", json!({"response": "env", "apps": []})),
        (
            "plan",
            json!({"response": "plan", "revision": 2, "steps": [], "rules": null}),
        ),
        (
            "processes",
            json!({"response": "processes", "processes": []}),
        ),
        (
            "log_sources",
            json!({"response": "log_sources", "sources": []}),
        ),
        (
            "log_lines",
            json!({"response": "log_lines", "lines": [], "missed": 3}),
        ),
        (
            "rule_list",
            json!({"response": "rules", "source": "/srv/pmx.rhai", "rules": []}),
        ),
        (
            "monit_update",
            json!({"response": "monit", "processes": null, "events": [], "logs": [],
            "missed": 0, "fresh": true}),
        ),
        (
            "recent_list",
            json!({"response": "recent", "instances": []}),
        ),
        ("killed", json!({"response": "killed"})),
        (
            "error",
            json!({"response": "error", "kind": "not_found", "message": "no app api"}),
        ),
    ];
    for verb in [
        "stop",
        "restart",
        "delete",
        "reset",
        "describe",
        "env",
        "flush",
        "start_apps",
    ] {
        messages.push((
            verb,
            json!({"request": verb, "targets": targets, "force": true}),
        ));
    }
    for verb in [
        "list",
        "jlist",
        "ping",
        "kill",
        "save",
        "resurrect",
        "reload_logs",
        "rules",
        "recent",
    ] {
        messages.push((verb, json!({"request": verb})));
    }
    messages
}

/// Today's encoding of `message` after decoding it as a request or a response.
fn round_trip(message: &Value) -> Result<Value, String> {
    let encoded = if message.get("request").is_some() {
        serde_json::from_value::<Request>(message.clone()).and_then(serde_json::to_value)
    } else {
        serde_json::from_value::<Response>(message.clone()).and_then(serde_json::to_value)
    };
    encoded.map_err(|e| e.to_string())
}

#[test]
#[ignore]
fn write_the_protocol_fixture() {
    let path = fixture();
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );
    let messages: serde_json::Map<String, Value> = minimal()
        .into_iter()
        .map(|(name, m)| {
            let full = round_trip(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name.to_string(), full)
        })
        .collect();
    let text = serde_json::to_string_pretty(&messages).unwrap();
    std::fs::write(&path, text + "\n").unwrap();
}

#[test]
fn every_message_of_this_protocol_version_reads_and_writes_as_its_fixture_says() {
    let path = fixture();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; a new PROTOCOL_VERSION needs its fixture (see this file's comment)",
            path.display()
        )
    });
    let messages: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = minimal().into_iter().map(|(name, _)| name).collect();
    for name in &names {
        assert!(
            messages.contains_key(*name),
            "{name} is missing from {}",
            path.display()
        );
    }
    for (name, message) in &messages {
        let again = round_trip(message).unwrap_or_else(|e| {
            panic!("{name} of protocol {PROTOCOL_VERSION} no longer decodes: {e}; bump PROTOCOL_VERSION")
        });
        assert_eq!(
            &again, message,
            "{name} of protocol {PROTOCOL_VERSION} is written differently today: bump PROTOCOL_VERSION"
        );
    }
}
