//! The socket: permissions, garbage, truncated and huge frames, and many clients at once.

use pmx_tests::Within;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture};

#[test]
fn socket_is_0600_in_a_0700_home() {
    let home = Home::new();
    home.ok(&["ping"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.path().join("pmx.sock")), 0o600);
    assert_eq!(mode(&home.path()), 0o700);
    assert!(home.path().join("journal").is_dir());
    assert!(home.path().join("pmx.log").is_file());
}

/// The journal holds apps' environments: nothing the daemon writes is readable by others.
/// Apps keep the umask the daemon was started with.
#[test]
fn journal_and_logs_are_private_and_apps_keep_their_umask() {
    let home = Home::new();
    let made = home.file("made-by-app");
    let mut start = home.command(&[
        "start",
        &format!("touch {made} && sleep 100"),
        "--name",
        "maker",
        "--env",
        "SECRET=hunter2",
    ]);
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut start, || {
            libc::umask(0o022);
            Ok(())
        });
    }
    assert!(start.output_within().status.success());
    home.wait_online("maker");
    pmx_tests::wait_for("the app's file", std::time::Duration::from_secs(5), || {
        std::path::Path::new(&made).exists().then_some(())
    });
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut checked = 0;
    let mut stack = vec![home.path().join("journal"), home.path().join("logs")];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir) & 0o077, 0, "{} is open to others", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(
                    mode(&path) & 0o077,
                    0,
                    "{} is open to others",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "journal and log files were checked");
    assert_eq!(
        mode(std::path::Path::new(&made)),
        0o644,
        "the app runs with the umask the daemon started with"
    );
}

fn connect(home: &Home) -> UnixStream {
    let s = UnixStream::connect(home.path().join("pmx.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the daemon closes the connection; true if it did.
fn closed_by_daemon(mut s: UnixStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn garbage_truncated_and_huge_frames_leave_the_daemon_serving() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "app"]);
    let pid = home.wait_online("app");

    let mut garbage = connect(&home);
    garbage
        .write_all(&[0, 0, 0, 5, b'x', b'y', b'z', b'{', b'!'])
        .unwrap();
    assert!(closed_by_daemon(garbage), "garbage closes the connection");

    let mut huge = connect(&home);
    huge.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(
        closed_by_daemon(huge),
        "a frame over the limit closes the connection"
    );

    let mut truncated = connect(&home);
    truncated.write_all(&[0, 0, 1, 0, b'{']).unwrap();
    drop(truncated);

    // A valid handshake followed by a request the daemon cannot decode.
    let mut bad_request = connect(&home);
    let hello = format!(r#"{{"version":{}}}"#, pmx_core::protocol::PROTOCOL_VERSION);
    let hello = hello.as_bytes();
    bad_request
        .write_all(&(hello.len() as u32).to_be_bytes())
        .unwrap();
    bad_request.write_all(hello).unwrap();
    let body = br#"{"request":"explode"}"#;
    bad_request
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    bad_request.write_all(body).unwrap();
    assert!(closed_by_daemon(bad_request));

    // An idle client does not block anyone.
    let _idle = connect(&home);
    home.ok(&["ping"]);
    assert_eq!(home.status("app"), "online");
    assert_eq!(home.pid("app"), pid);
    assert!(alive(pid));
}

#[test]
fn a_protocol_mismatch_is_refused_with_advice() {
    let home = Home::new();
    home.ok(&["ping"]);
    let mut s = connect(&home);
    let hello = br#"{"version":999}"#;
    s.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
    s.write_all(hello).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("version_mismatch") && text.contains("pmx kill"),
        "{text}"
    );
}

#[test]
fn two_hundred_concurrent_clients_are_all_answered() {
    let home = Home::new();
    home.ok(&["start", &fixture("forever.sh"), "--name", "app"]);
    let children: Vec<_> = (0..200)
        .map(|i| {
            let verb = if i % 2 == 0 { "jlist" } else { "ping" };
            home.command(&[verb])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let failures = children
        .into_iter()
        .map(|mut c| pmx_tests::wait_within(&mut c, "a client"))
        .filter(|status| !status.success())
        .count();
    assert_eq!(failures, 0);
}

#[test]
fn concurrent_first_commands_start_one_daemon() {
    let home = Home::new();
    let children: Vec<_> = (0..8)
        .map(|_| {
            home.command(&["ping"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(pmx_tests::wait_within(&mut c, "a client").success());
    }
    let daemon = home.daemon_pid().unwrap();
    assert!(alive(daemon));
    let out = home.ok(&["ping"]);
    assert!(out.contains(&daemon.to_string()), "{out}");
}

/// Regression: a command right after the daemon was killed could connect to the dying daemon
/// (still accepting while its threads exit) and fail with "connection reset".
#[test]
fn a_command_right_after_the_daemon_was_killed_gets_a_new_daemon() {
    let home = Home::new();
    // No app: a killed daemon's apps would outlive it (adopting them is the resurrect issue).
    home.ok(&["ping"]);
    for _ in 0..5 {
        let daemon = home.daemon_pid().unwrap();
        unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
        home.ok(&["ping"]);
        assert_ne!(home.daemon_pid(), Some(daemon));
    }
}
