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

pub fn startup(paths: &Paths, install: bool) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find the pmx binary: {e}")))?;
    let user = user();
    let text = unit(&exe, paths.home(), &user);
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
    print(&format!("[PMX] installed and enabled {}\n", path.display()));
    Ok(())
}

pub fn unstartup() -> Result<(), CliError> {
    let user = user();
    let path = unit_path(&user);
    if !path.exists() {
        print(&format!("[PMX] no {} installed\n", path.display()));
        return Ok(());
    }
    if systemd_runs() {
        systemctl(&["disable", &unit_name(&user)])?;
    }
    std::fs::remove_file(&path)
        .map_err(|e| CliError::Failed(format!("cannot remove {}: {e}", path.display())))?;
    print(&format!("[PMX] removed {}\n", path.display()));
    Ok(())
}
