//! `pmx daemon` replaces itself with `pmxd` (the daemon alone) when it stands beside `pmx`,
//! and runs the daemon in its own process when it does not; the daemon keeps resident only
//! what it uses.

use pmx_tests::Within;
use std::time::Duration;

use pmx_tests::{Home, fixture, pmx_bin, wait_for};

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
            .output_within();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("pmxd: "), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("/nonexistent-pmx-home").exists());
}

/// Resident bytes of the mappings of the daemon's own binary.
fn binary_resident_kib(pid: u32) -> u64 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_ascii_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            ours = line.ends_with(&exe);
        } else if ours && first == "Rss:" {
            kib += line
                .split_ascii_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib
}

#[test]
fn the_daemon_hands_its_start_up_and_command_code_back_and_keeps_one_idle_io_thread() {
    // Its own copy of the binaries: pages that other tests' daemons map too are not paged out.
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let pmx = dir.path().join("pmx");
    std::fs::copy(pmx_bin(), &pmx).unwrap();
    std::fs::copy(pmx_bin().with_file_name("pmxd"), dir.path().join("pmxd")).unwrap();
    let home = Home::with_binary(pmx);
    home.ok(&["ping"]);
    let daemon = home.daemon_pid().expect("pid file");
    let at_start = binary_resident_kib(daemon);
    // Start-up brought in much of the binary; a second after listening it is advised out.
    let settled = wait_for(
        "the start-up code handed back",
        Duration::from_secs(15),
        || {
            let now = binary_resident_kib(daemon);
            (now * 2 < at_start).then_some(now)
        },
    );
    assert!(settled < at_start, "{settled} KiB of {at_start}");
    // Journal writes used sled's IO pool; at rest one thread of it waits (sled kept seven).
    for i in 0..5 {
        home.ok(&["start", &fixture("forever.sh"), "--name", &format!("a{i}")]);
    }
    // The starts brought the code of spawning and journaling back; once commands stop for
    // two seconds it goes again.
    let busy = binary_resident_kib(daemon);
    wait_for(
        "the code of the commands handed back",
        Duration::from_secs(15),
        || (binary_resident_kib(daemon) + 256 < busy).then_some(()),
    );
    let io_threads = || {
        std::fs::read_dir(format!("/proc/{daemon}/task"))
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm)
                    .unwrap_or_default()
                    .starts_with("sled-io")
            })
            .count()
    };
    wait_for(
        "one sled IO thread at rest",
        Duration::from_secs(15),
        || (io_threads() == 1).then_some(()),
    );
}
