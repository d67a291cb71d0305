//! `pmx startup`: the systemd unit is checked for structure, then run the way systemd would
//! run it (its ExecStart with its Environment, stopped with SIGTERM).

use pmx_tests::Within;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use pmx_tests::{Home, alive, fixture, wait_for};

/// `[Section] -> key -> value` of a unit file.
fn parse_unit(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(!current.is_empty(), "{key} outside a section");
        sections
            .entry(current.clone())
            .or_default()
            .insert(key.into(), value.into());
    }
    sections
}

#[test]
fn startup_prints_a_unit_that_runs_the_daemon_for_this_home() {
    let home = Home::new();
    let text = home.ok(&["startup", "--print"]);
    let unit = parse_unit(&text);
    for section in ["Unit", "Service", "Install"] {
        assert!(unit.contains_key(section), "no [{section}]: {text}");
    }
    let service = &unit["Service"];
    assert_eq!(
        service["KillMode"], "mixed",
        "SIGTERM must reach the daemon alone"
    );
    assert_eq!(unit["Install"]["WantedBy"], "multi-user.target");
    let env = service["Environment"]
        .strip_prefix("PMX_HOME=")
        .expect("PMX_HOME set");
    assert_eq!(Path::new(env), home.path());
    let exec: Vec<&str> = service["ExecStart"].split_whitespace().collect();
    assert!(Path::new(exec[0]).is_absolute() && Path::new(exec[0]).exists());
    assert_eq!(exec[1..], ["daemon"]);

    // Run it as systemd would, with the unit's environment, then stop it as systemd would.
    home.ok(&["start", &fixture("forever.sh"), "--name", "boot"]);
    home.stop_daemon();
    let mut daemon = std::process::Command::new(exec[0])
        .args(&exec[1..])
        .env("PMX_HOME", env)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until its socket is up, a CLI command would start a daemon of its own.
    wait_for("the unit's daemon", Duration::from_secs(10), || {
        home.path().join("pmx.sock").exists().then_some(())
    });
    let app = home.wait_online("boot");
    assert_eq!(home.daemon_pid(), Some(daemon.id()));
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = wait_for("daemon exit", Duration::from_secs(10), || {
        daemon.try_wait().unwrap()
    });
    assert!(status.success());
    assert!(!alive(app));
}

#[test]
fn startup_install_refuses_clearly_without_systemd() {
    if Path::new("/run/systemd/system").exists() {
        return; // a machine with systemd: installing there is not a test's business
    }
    let home = Home::new();
    let stderr = home.fails(1, &["startup", "--install"]);
    assert!(stderr.contains("systemd does not run here"), "{stderr}");
    let out = home.ok(&["unstartup"]);
    assert!(out.contains("no /etc/systemd/system/pm2-"), "{out}");
}

#[test]
fn startup_for_another_user_writes_that_users_unit_and_home() {
    let home = Home::new();
    let text = home.ok(&[
        "startup",
        "systemd",
        "-u",
        "nobody",
        "--hp",
        "/srv/nobody",
        "--print",
    ]);
    let unit = parse_unit(&text);
    assert_eq!(unit["Service"]["User"], "nobody", "{text}");
    assert_eq!(
        unit["Service"]["Environment"], "PMX_HOME=/srv/nobody/.pmx",
        "{text}"
    );
    // Without --hp, the home comes from /etc/passwd.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let root_home = passwd
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .and_then(|rest| rest.split(':').nth(4))
        .unwrap()
        .to_string();
    let text = home.ok(&["startup", "-u", "root", "--print"]);
    assert!(
        text.contains(&format!("Environment=PMX_HOME={root_home}/.pmx")),
        "{text}"
    );
    let err = home.fails(2, &["startup", "-u", "no-such-user-here"]);
    assert!(err.contains("no user `no-such-user-here`"), "{err}");
    let err = home.fails(2, &["startup", "launchd"]);
    assert!(err.contains("unknown init system `launchd`"), "{err}");
    let err = home.fails(2, &["startup", "systemv", "--service-name", "../../tmp/x"]);
    assert!(err.contains("--service-name"), "{err}");
}

/// PM2's `startup upstart|systemv [--service-name NAME]` as root: an /etc/init.d script that
/// starts the daemon as the user; `unstartup` removes it. The script's `start` and `stop` are
/// run as the init system would.
#[test]
fn startup_systemv_installs_an_init_script_that_starts_and_stops_the_daemon() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test writes /etc/init.d: run the suite as root, as CI does"
    );
    let home = Home::new();
    let name = format!("pmx-test-{}", std::process::id());
    let script = format!("/etc/init.d/{name}");
    // The script runs the daemon of `--hp`'s `.pmx`: make this home that one.
    let hp = home.file("user");
    std::fs::create_dir(&hp).unwrap();
    let pmx_home = format!("{hp}/.pmx");
    /// Whatever happens, the script goes and the daemon it started ends.
    struct CleanUp(String, String);
    impl Drop for CleanUp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let pid = std::fs::read_to_string(&self.1).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<i32>() {
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
    let _clean = CleanUp(script.clone(), format!("{pmx_home}/pm2.pid"));
    let out = home.ok(&[
        "startup",
        "upstart",
        "-u",
        "root",
        "--hp",
        &hp,
        "--service-name",
        &name,
    ]);
    assert!(out.contains("installed"), "{out}");
    let meta = std::fs::metadata(&script).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o755
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains(&format!("PMX_HOME=\"{pmx_home}\"")), "{text}");
    let started = std::process::Command::new(&script)
        .arg("start")
        .status_within();
    assert!(started.success());
    let pid_file = format!("{pmx_home}/pm2.pid");
    let pid = wait_for("the daemon of the script", Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()
    });
    assert!(alive(pid as u32));
    let stopped = std::process::Command::new(&script)
        .arg("stop")
        .status_within();
    assert!(stopped.success());
    wait_for("the daemon stopped", Duration::from_secs(10), || {
        (!alive(pid as u32)).then_some(())
    });
    let out = home.ok(&["unstartup", "upstart", "--service-name", &name]);
    assert!(out.contains("removed"), "{out}");
    assert!(!std::path::Path::new(&script).exists());
}
