//! Logs: every byte captured in order, timestamps and JSON lines, `pmx logs` across a
//! rotation, following, flush and reloadLogs, rotation with retain and gzip, and a full
//! disk that costs lines (counted, journaled) but never the app.

use pmx_tests::Within;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for};

/// What `writer.py` writes to stdout, byte for byte.
fn expected_out(lines: usize) -> Vec<u8> {
    let mut out = b"bad utf-8: \xff\xfe\x80 and a \r carriage return\n".to_vec();
    out.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    out.push(b'\n');
    for i in 0..lines {
        out.extend(format!("line {i}\n").bytes());
    }
    out.extend(b"no newline at the end");
    out
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn wait_file(path: &str, len: usize) -> Vec<u8> {
    wait_for(
        &format!("{path} to hold {len} bytes"),
        Duration::from_secs(20),
        || {
            let bytes = read(path);
            (bytes.len() >= len).then_some(bytes)
        },
    )
}

#[test]
fn every_byte_arrives_exactly_and_in_order() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("writer.py"),
        "--name",
        "w",
        "--no-autorestart",
    ]);
    let expected = expected_out(20_000);
    let out = wait_file(&home.file("logs/w-out.log"), expected.len());
    assert!(
        out == expected,
        "stdout differs (len {} vs {})",
        out.len(),
        expected.len()
    );
    let err = String::from_utf8(wait_file(&home.file("logs/w-error.log"), 20 * 8)).unwrap();
    let expected_err: String = (0..20).map(|i| format!("err {}\n", i * 1000)).collect();
    assert_eq!(err, expected_err);
}

#[test]
fn time_prefixes_whole_lines_and_json_lines_parse() {
    let home = Home::new();
    home.ok(&[
        "start",
        &fixture("writer.py"),
        "--name",
        "t",
        "--no-autorestart",
        "--time",
    ]);
    let path = home.file("logs/t-out.log");
    let text = wait_for("the last line", Duration::from_secs(20), || {
        let text = read(&path);
        text.ends_with(b"no newline at the end\n").then_some(text)
    });
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3 + 20_000);
    let stamp = regex_like_stamp();
    for line in &lines {
        assert!(
            stamp(line),
            "{:?}",
            String::from_utf8_lossy(&line[..line.len().min(60)])
        );
    }
    assert_eq!(
        lines[1].len(),
        "2026-11-21T10:00:00: ".len() + 1024 * 1024,
        "one stamp for the 1 MiB line"
    );

    home.ok(&[
        "start",
        &fixture("writer.py"),
        "--name",
        "j",
        "--no-autorestart",
        "--log-type",
        "json",
    ]);
    let path = home.file("logs/j-out.log");
    let text = wait_for("the json lines", Duration::from_secs(20), || {
        let text = String::from_utf8(read(&path)).ok()?;
        (text.lines().count() == 3 + 20_000).then_some(text)
    });
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "no newline at the end");
    assert_eq!(
        (last["app"].as_str(), last["stream"].as_str()),
        (Some("j"), Some("out"))
    );
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["message"],
        "bad utf-8: \u{fffd}\u{fffd}\u{fffd} and a \r carriage return"
    );
}

/// `2026-11-21T10:00:00: ` at the start of a line.
fn regex_like_stamp() -> impl Fn(&[u8]) -> bool {
    |line: &[u8]| {
        line.len() > 21
            && line[..21].iter().enumerate().all(|(i, &b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 | 19 => b == b':',
                20 => b == b' ',
                _ => b.is_ascii_digit(),
            })
    }
}

#[test]
fn logs_reads_exact_lines_across_rotations_and_rotation_keeps_every_line() {
    let home = Home::new();
    // Small files: the writer's output rotates several times; gzip and keep 50.
    let started = home
        .command(&["ping"])
        .env("PMX_LOG_MAX_SIZE", "4K")
        .env("PMX_LOG_RETAIN", "50")
        .env("PMX_LOG_COMPRESS", "true")
        .output_within();
    assert!(started.status.success());
    let mut start = home.command(&[
        "start",
        &fixture("writer.py"),
        "--name",
        "r",
        "--no-autorestart",
    ]);
    assert!(start.env("LINES", "2000").output_within().status.success());
    let logs = home.path().join("logs");
    let rotated = wait_for(
        "the last line and the gzip work",
        Duration::from_secs(20),
        || {
            let names: Vec<String> = std::fs::read_dir(&logs)
                .ok()?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("r-out__"))
                .collect();
            let done = read(&home.file("logs/r-out.log")).ends_with(b"no newline at the end")
                && !names.is_empty()
                && names.iter().all(|n| n.ends_with(".log.gz"));
            done.then_some(names)
        },
    );
    // A file ends with the line that reaches 4K: about 19K of numbered lines make 4 more.
    assert!(rotated.len() >= 5, "{rotated:?}");
    let current = read(&home.file("logs/r-out.log"));
    assert!(
        current.len() < 4200,
        "the current file is under 4K and a line"
    );
    let out = home.ok(&[
        "logs",
        "r",
        "--lines",
        "1500",
        "--nostream",
        "--out",
        "--raw",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1500,
        "exactly the lines asked for, across rotations"
    );
    assert_eq!(lines[1499], "no newline at the end");
    let expected: Vec<String> = (501..2000).map(|i| format!("line {i}")).collect();
    assert_eq!(
        lines[..1499],
        expected[..],
        "in order, none twice, none missing"
    );
    let pretty = home.ok(&["logs", "r", "--lines", "2", "--nostream"]);
    assert!(pretty.contains("r-out.log last 2 lines:"), "{pretty}");
    assert!(pretty.contains("0|r | line 1999"), "{pretty}");
    assert!(pretty.contains("0|r ! err 1000"), "stderr marked: {pretty}");
    let stderr = home.fails(1, &["logs", "nobody", "--nostream"]);
    assert!(stderr.contains("nobody"), "{stderr}");
    home.fails(1, &["flush", "nobody"]);
}

#[test]
fn follow_streams_new_lines_and_flush_and_reload_logs_work() {
    let home = Home::new();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "other"]);
    let mut follower = home
        .command(&["logs", "/^ti/", "--lines", "0", "--timestamp"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 12 {
        seen.push(lines.next().unwrap().unwrap());
    }
    follower.kill().unwrap();
    pmx_tests::wait_within(&mut follower, "logs --follow");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("0|tick | 20") && l.contains(" tick ")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("0|tick ! ") && l.contains("tock")),
        "{seen:?}"
    );

    let out = home.file("logs/tick-out.log");
    home.ok(&["flush", "tick"]);
    let after = read(&out).len();
    assert!(after < 200, "flushed: {after} bytes");
    // An outside logrotate moves the file; reloadLogs makes pmx write a new one.
    let moved = home.file("logs/moved.log");
    std::fs::rename(&out, &moved).unwrap();
    home.ok(&["reloadLogs"]);
    wait_for("a new tick-out.log", Duration::from_secs(5), || {
        String::from_utf8_lossy(&read(&out))
            .contains("tick ")
            .then_some(())
    });
}

#[test]
fn a_full_disk_costs_lines_not_the_app() {
    let home = Home::new();
    let mount = home.file("tiny");
    std::fs::create_dir(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", &mount])
        .status()
        .is_ok_and(|s| s.success());
    if !pmx_tests::tool_available("a tmpfs mount (needs root)", mounted) {
        return;
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let file = format!("{mount}/tick.log");
    home.ok(&[
        "start",
        &fixture("writer.py"),
        "--name",
        "full",
        "--no-autorestart",
        "-o",
        &file,
    ]);
    home.ok(&[
        "start",
        &fixture("ticker.sh"),
        "--name",
        "tick",
        "-o",
        &format!("{mount}/t.log"),
    ]);
    let lost = wait_for(
        "the loss to show in describe",
        Duration::from_secs(20),
        || {
            let p = home.proc("full");
            let lost = p["pm2_env"]["log_lost_bytes"].as_u64()?;
            // The 1 MiB line may be lost in pieces (cut at 2 MiB pending or not).
            (lost > 900_000).then_some(lost)
        },
    );
    assert!(lost > 900_000, "most of the 1 MiB line was lost: {lost}");
    let tick = home.pid("tick");
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(tick), "an app writing to a full disk keeps running");
    let describe = home.ok(&["describe", "full"]);
    assert!(describe.contains("lost log output"), "{describe}");
    let history = home.ok(&["history", "full"]);
    assert!(history.contains("LOG LINES LOST"), "{history}");
    home.ok(&["delete", "all"]);
}

#[test]
fn cron_rotation_ticks_and_merged_instances_share_one_file() {
    let home = Home::new();
    // Every second (6 fields: seconds first).
    let started = home
        .command(&["ping"])
        .env("PMX_LOG_ROTATE_INTERVAL", "* * * * * *")
        .output_within();
    assert!(started.status.success());
    home.ok(&[
        "start",
        &fixture("ticker.sh"),
        "--name",
        "m",
        "-i",
        "2",
        "--merge-logs",
    ]);
    let logs = home.path().join("logs");
    let rotated = wait_for("two cron rotations", Duration::from_secs(10), || {
        let n = std::fs::read_dir(&logs)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("m-out__"))
            .count();
        (n >= 2).then_some(n)
    });
    assert!(rotated >= 2);
    let out = home.ok(&["logs", "m", "--nostream", "--lines", "1", "--out"]);
    assert_eq!(
        out.matches("m-out.log last 1 lines:").count(),
        1,
        "one merged file: {out}"
    );
    assert!(!logs.join("m-out-0.log").exists() && !logs.join("m-out-1.log").exists());
}

#[test]
fn a_follower_that_falls_behind_is_told_and_slows_nothing() {
    let home = Home::new();
    let lines = 300_000;
    let script = format!("sleep 1; seq 1 {lines}");
    home.ok(&["start", &script, "--name", "s", "--no-autorestart"]);
    // Its stdout is not read while the app floods: it falls behind.
    let mut follower = home
        .command(&["logs", "s", "--lines", "0", "--raw"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let path = home.file("logs/s-out.log");
    wait_for("every line in the file", Duration::from_secs(20), || {
        (read(&path).iter().filter(|&&b| b == b'\n').count() == lines).then_some(())
    });
    let mut stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut shown);
        shown.iter().filter(|&&b| b == b'\n').count()
    });
    std::thread::sleep(Duration::from_secs(1));
    follower.kill().unwrap();
    let output = follower.wait_with_output().unwrap();
    let shown = reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lines were skipped"),
        "shown {shown}: {stderr}"
    );
    assert!(shown < lines, "the follower saw {shown} of {lines}");
}

#[test]
fn a_piece_of_a_line_without_its_end_still_reaches_the_files() {
    let home = Home::new();
    home.ok(&["start", &fixture("partial.sh"), "--name", "p", "--time"]);
    for (file, piece) in [
        ("logs/p-out.log", "out piece"),
        ("logs/p-error.log", "err piece"),
    ] {
        let path = home.file(file);
        let text = wait_for(piece, Duration::from_secs(10), || {
            let text = String::from_utf8(read(&path)).ok()?;
            text.contains(piece).then_some(text)
        });
        assert!(regex_like_stamp()(text.as_bytes()), "{text:?}");
    }
}
