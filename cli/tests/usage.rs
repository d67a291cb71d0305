//! The binary's usage errors, without a daemon (and a reason for cargo to build `pmx` before
//! the end-to-end tests run).

use std::process::Command;

fn pmx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pmx"))
        .args(args)
        .env("PMX_HOME", "/nonexistent/pmx-usage-test")
        .output()
        .unwrap()
}

#[test]
fn version_and_help_succeed() {
    assert!(pmx(&["--version"]).status.success());
    let help = pmx(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for verb in [
        "start",
        "stop",
        "restart",
        "delete",
        "list",
        "jlist",
        "describe",
        "sendSignal",
        "reset",
        "ping",
        "kill",
        "daemon",
    ] {
        assert!(text.contains(verb), "help lacks {verb}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(pmx(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(pmx(&["start"]).status.code(), Some(2));
    assert_eq!(pmx(&["stop"]).status.code(), Some(2));
}

#[test]
fn kill_without_a_daemon_is_not_an_error() {
    let out = pmx(&["kill"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no pmx daemon"));
}
