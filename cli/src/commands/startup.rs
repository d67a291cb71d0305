//! `pmx startup` and `pmx unstartup`: a systemd unit (or an /etc/init.d script, PM2's
//! `upstart`/`systemv`) that runs the daemon at boot for a user and its `PMX_HOME`, so the
//! apps that should run come back after a reboot.

use std::path::{Path, PathBuf};
use std::process::Command;

use pmx_core::paths::{Paths, passwd_name};

use crate::args::StartupArgs;
use crate::error::CliError;
use crate::output::print;

fn user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .unwrap_or_else(|| uid.to_string())
}

/// The init systems pmx writes for: a systemd unit, or an LSB script in /etc/init.d (PM2's
/// `upstart` and `systemv` both write one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Systemd,
    InitD,
}

fn platform(name: Option<&str>) -> Result<Platform, CliError> {
    match name {
        None | Some("systemd") => Ok(Platform::Systemd),
        Some("upstart" | "systemv" | "sysv") => Ok(Platform::InitD),
        Some(other) => Err(CliError::Usage(format!(
            "unknown init system `{other}`: pmx writes for systemd, upstart and systemv"
        ))),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
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

fn service_name(user: &str, given: Option<String>) -> Result<String, CliError> {
    let name = given.unwrap_or_else(|| format!("pm2-{user}"));
    let fits = |c: char| c.is_ascii_alphanumeric() || "@._-".contains(c);
    if name.is_empty() || name.starts_with('.') || !name.chars().all(fits) {
        return Err(CliError::Usage(format!(
            "--service-name {name:?}: letters, digits and @ . _ - only"
        )));
    }
    Ok(name)
}

/// Where the service's file goes.
fn service_path(platform: Platform, name: &str) -> PathBuf {
    match platform {
        Platform::Systemd => Path::new("/etc/systemd/system").join(format!("{name}.service")),
        Platform::InitD => Path::new("/etc/init.d").join(name),
    }
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

/// The /etc/init.d script: `start` starts the daemon as the user (it brings back the apps
/// that should run), `stop` sends it SIGTERM (it stops them gracefully; they come back at the
/// next start), `status` asks it.
pub fn init_script(exe: &Path, home: &Path, user: &str, name: &str) -> String {
    format!(
        r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $local_fs $remote_fs $network
# Required-Stop:     $local_fs $remote_fs $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: pmx process manager for {user}
### END INIT INFO

PMX="{exe}"
export PMX_HOME="{home}"
as_user() {{
    if [ "$(id -un)" = "{user}" ]; then sh -c "$1"; else su {user} -s /bin/sh -c "$1"; fi
}}

case "$1" in
    start) as_user "PMX_HOME='$PMX_HOME' '$PMX' ping" ;;
    stop) [ -f "$PMX_HOME/pm2.pid" ] && kill "$(cat "$PMX_HOME/pm2.pid")" ;;
    restart|reload|force-reload) "$0" stop; sleep 1; "$0" start ;;
    status) as_user "PMX_HOME='$PMX_HOME' '$PMX' list" ;;
    *) echo "usage: $0 {{start|stop|restart|status}}"; exit 2 ;;
esac
"#,
        exe = exe.display(),
        home = home.display(),
    )
}

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn run(program: &str, args: &[&str]) -> Result<(), CliError> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| CliError::Failed(format!("cannot run {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{program} {} failed",
            args.join(" ")
        )))
    }
}

/// Whether a program is on the PATH.
fn found(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// As PM2: root installs and enables the service; another user sees it and the command that
/// installs it (or passes `--install` to try); `--print` only prints.
pub fn startup(paths: &Paths, args: StartupArgs) -> Result<(), CliError> {
    let platform = platform(args.platform.as_deref())?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find the pmx binary: {e}")))?;
    let (user, home) = target(paths, args.user, args.home_path)?;
    let name = service_name(&user, args.service_name)?;
    let text = match platform {
        Platform::Systemd => unit(&exe, &home, &user),
        Platform::InitD => init_script(&exe, &home, &user, &name),
    };
    if args.print || !(args.install || is_root()) {
        print(&text);
        if !args.print {
            eprintln!(
                "pmx: to install it, run as root: sudo env PATH=$PATH {} startup {} -u {user} --hp {}",
                exe.display(),
                args.platform.as_deref().unwrap_or("systemd"),
                home.parent().unwrap_or(&home).display()
            );
        }
        return Ok(());
    }
    let path = service_path(platform, &name);
    if platform == Platform::Systemd && !systemd_runs() {
        return Err(CliError::Failed(
            "systemd does not run here (no /run/systemd/system): nothing installed. `pmx startup --print` prints the unit; `pmx startup systemv` writes an /etc/init.d script; in a container, make `pmx daemon` the entrypoint".into(),
        ));
    }
    std::fs::write(&path, text).map_err(|e| {
        CliError::Failed(format!(
            "cannot write {}: {e} (root is needed there)",
            path.display()
        ))
    })?;
    match platform {
        Platform::Systemd => {
            run("systemctl", &["daemon-reload"])?;
            run("systemctl", &["enable", &format!("{name}.service")])?;
            crate::output::say(&format!("installed and enabled {}", path.display()));
        }
        Platform::InitD => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
                |e| CliError::Failed(format!("cannot make {} executable: {e}", path.display())),
            )?;
            if found("update-rc.d") {
                run("update-rc.d", &[&name, "defaults"])?;
                crate::output::say(&format!("installed and enabled {}", path.display()));
            } else if found("chkconfig") {
                run("chkconfig", &["--add", &name])?;
                crate::output::say(&format!("installed and enabled {}", path.display()));
            } else {
                crate::output::say(&format!(
                    "installed {} (no update-rc.d or chkconfig here: link it into your runlevels to start it at boot)",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

pub fn unstartup(
    platform_name: Option<String>,
    user_name: Option<String>,
    given_name: Option<String>,
) -> Result<(), CliError> {
    let platform = platform(platform_name.as_deref())?;
    let user = user_name.unwrap_or_else(user);
    let name = service_name(&user, given_name)?;
    let path = service_path(platform, &name);
    if !path.exists() {
        crate::output::say(&format!("no {} installed", path.display()));
        return Ok(());
    }
    match platform {
        Platform::Systemd if systemd_runs() => {
            run("systemctl", &["disable", &format!("{name}.service")])?
        }
        Platform::Systemd => {}
        Platform::InitD => {
            std::fs::remove_file(&path)
                .map_err(|e| CliError::Failed(format!("cannot remove {}: {e}", path.display())))?;
            if found("update-rc.d") {
                run("update-rc.d", &[&name, "remove"])?;
            } else if found("chkconfig") {
                run("chkconfig", &["--del", &name])?;
            }
            crate::output::say(&format!("removed {}", path.display()));
            return Ok(());
        }
    }
    std::fs::remove_file(&path)
        .map_err(|e| CliError::Failed(format!("cannot remove {}: {e}", path.display())))?;
    crate::output::say(&format!("removed {}", path.display()));
    Ok(())
}
