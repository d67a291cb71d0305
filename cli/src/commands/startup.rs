//! `pmx startup [--install]` and `pmx unstartup`: a systemd unit that runs `pmx daemon` at
//! boot for this user and `PMX_HOME`, so the apps that should run come back after a reboot.

use std::path::{Path, PathBuf};
use std::process::Command;

use pmx_core::paths::{Paths, passwd_name};

use crate::CliError;
use crate::output::print;

fn user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .unwrap_or_else(|| uid.to_string())
}

/// Only systemd is known; PM2's other platforms are refused by name.
fn check_platform(platform: Option<&str>) -> Result<(), CliError> {
    match platform {
        None | Some("systemd") => Ok(()),
        Some(other) => Err(CliError::Usage(format!(
            "unknown init system `{other}`: pmx writes systemd units only (`pmx startup systemd`)"
        ))),
    }
}

/// Whose unit, and which home: `-u USER` (from /etc/passwd, `--hp` overriding its home
/// directory) gets `HOME/.pmx`; without it, this user and this `PMX_HOME`.
fn target(
    paths: &Paths,
    user_name: Option<String>,
    home_path: Option<PathBuf>,
) -> Result<(String, PathBuf), CliError> {
    let Some(name) = user_name else {
        if home_path.is_some() {
            return Err(CliError::Usage("--hp goes with -u USER".into()));
        }
        return Ok((user(), paths.home().to_path_buf()));
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let listed = pmx_core::paths::passwd_home(&passwd, &name);
    let home = match (home_path, listed) {
        (Some(hp), _) => hp,
        (None, Some(home)) => PathBuf::from(home),
        (None, None) => {
            return Err(CliError::Usage(format!(
                "no user `{name}` in /etc/passwd (give its home with --hp)"
            )));
        }
    };
    Ok((name, home.join(".pmx")))
}

fn unit_name(user: &str) -> String {
    format!("pmx-{user}.service")
}

fn unit_path(user: &str) -> PathBuf {
    Path::new("/etc/systemd/system").join(unit_name(user))
}

/// The unit text. `KillMode=mixed`: SIGTERM goes to the daemon alone, which stops every app
/// gracefully (kill_signal, kill_timeout) before it exits; SIGKILL to the rest only after
/// `TimeoutStopSec`.
pub fn unit(exe: &Path, home: &Path, user: &str) -> String {
    format!(
        "[Unit]
Description=pmx process manager for {user}
After=network.target

[Service]
Type=simple
User={user}
Environment=PMX_HOME={home}
ExecStart={exe} daemon
KillMode=mixed
TimeoutStopSec=120
Restart=on-failure
LimitNOFILE=infinity

[Install]
WantedBy=multi-user.target
",
        home = home.display(),
        exe = exe.display(),
    )
}

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> Result<(), CliError> {
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .map_err(|e| CliError::Failed(format!("cannot run systemctl: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "systemctl {} failed",
            args.join(" ")
        )))
    }
}

pub fn startup(
    paths: &Paths,
    platform: Option<String>,
    install: bool,
    user_name: Option<String>,
    home_path: Option<PathBuf>,
) -> Result<(), CliError> {
    check_platform(platform.as_deref())?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find the pmx binary: {e}")))?;
    let (user, home) = target(paths, user_name, home_path)?;
    let text = unit(&exe, &home, &user);
    if !install {
        print(&text);
        return Ok(());
    }
    if !systemd_runs() {
        return Err(CliError::Failed(
            "systemd does not run here (no /run/systemd/system): nothing installed. `pmx startup` prints the unit; in a container, make `pmx daemon` the entrypoint".into(),
        ));
    }
    let path = unit_path(&user);
    std::fs::write(&path, text).map_err(|e| {
        CliError::Failed(format!(
            "cannot write {}: {e} (root is needed for /etc/systemd/system)",
            path.display()
        ))
    })?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", &unit_name(&user)])?;
    crate::output::say(&format!("installed and enabled {}", path.display()));
    Ok(())
}

pub fn unstartup(platform: Option<String>, user_name: Option<String>) -> Result<(), CliError> {
    check_platform(platform.as_deref())?;
    let user = user_name.unwrap_or_else(user);
    let path = unit_path(&user);
    if !path.exists() {
        crate::output::say(&format!("no {} installed", path.display()));
        return Ok(());
    }
    if systemd_runs() {
        systemctl(&["disable", &unit_name(&user)])?;
    }
    std::fs::remove_file(&path)
        .map_err(|e| CliError::Failed(format!("cannot remove {}: {e}", path.display())))?;
    crate::output::say(&format!("removed {}", path.display()));
    Ok(())
}
