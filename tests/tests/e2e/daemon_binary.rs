//! `pmx daemon` replaces itself with `pmxd` (the daemon alone) when it stands beside `pmx`,
//! and runs the daemon in its own process when it does not.

use pmx_tests::{Home, fixture, pmx_bin};

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn the_daemon_runs_as_pmxd_beside_pmx() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "app"]);
    home.wait_online("app");
    let daemon = home.daemon_pid().expect("pid file");
    assert_eq!(comm(daemon), "pmxd");
    let exe = std::fs::read_link(format!("/proc/{daemon}/exe")).unwrap();
    assert_eq!(exe, pmx_bin().with_file_name("pmxd"));
    assert!(home.ok(&["ping"]).contains(&format!("daemon pid {daemon}")));
}

#[test]
fn pmx_alone_runs_the_daemon_itself() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let lone = dir.path().join("pmx");
    std::fs::copy(pmx_bin(), &lone).unwrap();
    let home = Home::with_binary(lone.clone());
    home.ok(&["start", &fixture("forever.sh"), "--name", "app"]);
    home.wait_online("app");
    let daemon = home.daemon_pid().expect("pid file");
    assert_eq!(comm(daemon), "pmx");
    assert_eq!(
        std::fs::read_link(format!("/proc/{daemon}/exe")).unwrap(),
        lone
    );
}

#[test]
fn pmxd_run_by_hand_says_how_it_is_run() {
    let pmxd = pmx_bin().with_file_name("pmxd");
    for args in [
        &[][..],
        &["--settings", "{not json"][..],
        &["--other", "x"][..],
    ] {
        let out = std::process::Command::new(&pmxd)
            .args(args)
            .env("PMX_HOME", "/nonexistent-pmx-home")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("pmxd: "), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("/nonexistent-pmx-home").exists());
}
