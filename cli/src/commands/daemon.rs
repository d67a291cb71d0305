//! `pmx daemon` (foreground), `pmx ping`, `pmx kill`.

use pmx_actors::Settings;
use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Response};

use super::ask;
use crate::args::DaemonArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::println;

/// Runs the daemon in the foreground until SIGTERM/SIGINT or `pmx kill`: replaces this
/// process with `pmxd` (beside this binary: it maps only the daemon's code, so its resident
/// memory is smaller), with the settings resolved here. Without a `pmxd` the daemon runs in
/// this process.
pub fn run(paths: Paths, args: DaemonArgs) -> Result<(), CliError> {
    let settings = Settings {
        retention_days: args.retention_days,
        retention_events: args.retention_events,
        rotation: pmx_core::logs::Rotation {
            max_size_bytes: args.log_max_size,
            retain: args.log_retain,
            compress: args.log_compress,
            date_format: args.log_date_format,
            interval: args.log_rotate_interval,
        },
        sample_interval_ms: args.sample_interval,
        http: args.metrics,
    };
    if let Some(pmxd) = daemon_binary() {
        use std::os::unix::process::CommandExt;
        let json = serde_json::to_string(&settings)
            .map_err(|e| CliError::Failed(format!("cannot hand the settings over: {e}")))?;
        let error = std::process::Command::new(&pmxd)
            .arg("--settings")
            .arg(json)
            .env("PMX_HOME", paths.home())
            .exec();
        return Err(CliError::Failed(format!(
            "cannot run {}: {error}",
            pmxd.display()
        )));
    }
    pmx_actors::serve(paths, settings).map_err(|e| match e.exit_code() {
        2 => CliError::Usage(e.to_string()),
        _ => CliError::Failed(e.to_string()),
    })
}

/// `pmx update`: the running daemon re-executes itself from this pmx's daemon program
/// (`pmxd` beside it, else this binary), handing its processes over: same daemon pid, no app
/// restarted. Waits until the new program answers.
pub fn update(paths: &Paths, binary: Option<String>) -> Result<(), CliError> {
    let Some(mut client) = Client::try_connect_for_update(paths)? else {
        println("no pmx daemon runs: the next command starts this version");
        return Ok(());
    };
    let binary = binary.or_else(|| {
        let own = daemon_binary().or_else(|| std::env::current_exe().ok())?;
        Some(own.display().to_string())
    });
    let started = std::time::Instant::now();
    let binary = binary.map(|b| std::fs::canonicalize(&b).map_or(b, |p| p.display().to_string()));
    let request = pmx_core::protocol::UpdateRequest { binary };
    let updating = match client.request_update(&request)? {
        Response::Updating(u) => u,
        Response::Error(f) => return Err(super::failure(f)),
        other => return Err(CliError::Failed(format!("unexpected answer: {other:?}"))),
    };
    drop(client);
    for why in &updating.not_handed {
        println(&format!(
            "taken over instead (stopped and started again): {why}"
        ));
    }
    // The same socket answers again once the new program serves it.
    let deadline = started + std::time::Duration::from_secs(30);
    loop {
        if let Ok(Some(mut client)) = Client::try_connect(paths)
            && let Ok(Response::Pong(pong)) = client.request(&Request::Ping)
            && pong.started_at != updating.started_at
        {
            let restarted = match updating.not_handed.len() {
                0 => "none restarted".to_string(),
                n => format!("{n} taken over (restarted)"),
            };
            println(&format!(
                "daemon {} updated {} → {} in {} ms: {} processes adopted, {restarted}",
                pong.daemon_pid,
                updating.from,
                updating.to,
                started.elapsed().as_millis(),
                updating.handed
            ));
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "the daemon did not answer within 30 s after executing {}: see {}",
                updating.binary,
                paths.daemon_log().display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `pmxd` in the directory of this binary, if it is there.
fn daemon_binary() -> Option<std::path::PathBuf> {
    let pmxd = std::env::current_exe().ok()?.with_file_name("pmxd");
    pmxd.is_file().then_some(pmxd)
}

/// Applies `$PMX_HOME/daemon.toml` (keys are `pmx daemon`'s long flags: `metrics`,
/// `log_max_size`, ...) as the environment variables those flags read, where the environment
/// does not set them already: flags beat the environment, which beats the file. True when
/// something was applied and the command line must be parsed again.
pub fn apply_settings_file(paths: &Paths) -> Result<bool, CliError> {
    use clap::Args;
    // Nothing in a home someone else could write to is read, let alone trusted.
    pmx_core::private::check_home(paths.home(), pmx_core::private::euid())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let path = paths.daemon_config();
    let read = pmx_core::private::options()
        .read(true)
        .open(&path)
        .and_then(std::io::read_to_string);
    let text = match read {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let command = crate::args::DaemonArgs::augment_args(clap::Command::new("daemon"));
    let mut applied = false;
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let env = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()))
            .and_then(|a| a.get_env())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{}: unknown setting `{key}` (the settings are `pmx daemon`'s flags: see `pmx daemon --help`)",
                    path.display()
                ))
            })?;
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(_) | toml::Value::Float(_) => value.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(CliError::Usage(format!(
                    "{}: `{key}` must be a string, a number or a boolean, not {}",
                    path.display(),
                    other.type_str()
                )));
            }
        };
        if std::env::var_os(env).is_none() {
            // SAFETY: called before the daemon starts any thread.
            unsafe { std::env::set_var(env, value) };
            applied = true;
        }
    }
    Ok(applied)
}

pub fn ping(paths: &Paths) -> Result<(), CliError> {
    match ask(paths, &Request::Ping)? {
        Response::Pong(p) => {
            println(&format!(
                "pong (daemon pid {}, pmx {})",
                p.daemon_pid, p.version
            ));
            Ok(())
        }
        other => Err(CliError::Failed(format!("unexpected answer: {other:?}"))),
    }
}

/// `pmx dashboard`: where the daemon serves the dashboard and /metrics; `--token`: only the
/// token that actions need.
pub fn dashboard(paths: &Paths, token_only: bool) -> Result<(), CliError> {
    let Response::Pong(pong) = ask(paths, &Request::Ping)? else {
        return Err(CliError::Failed("unexpected answer from the daemon".into()));
    };
    let Some(url) = pong.http else {
        return Err(CliError::Failed(format!(
            "the daemon serves no dashboard: put `metrics = \"127.0.0.1:9615\"` in {} and restart the daemon (`pmx kill`, then any command), or run `pmx daemon --metrics 127.0.0.1:9615`",
            paths.daemon_config().display()
        )));
    };
    let token_path = paths.dashboard_token();
    let token = std::fs::read_to_string(&token_path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", token_path.display())))?;
    let token = token.trim();
    if token_only {
        println(token);
        return Ok(());
    }
    println(&format!("dashboard  {url}?token={token}"));
    println(&format!("metrics    {url}metrics"));
    println(&format!("api        {url}api/apps"));
    println(
        "the API's apps, history and logs, and actions, need the token: `Authorization: Bearer $(pmx dashboard --token)`",
    );
    Ok(())
}

pub fn kill(paths: &Paths) -> Result<(), CliError> {
    let Some(mut client) = Client::try_connect(paths)? else {
        println("no pmx daemon runs");
        return Ok(());
    };
    // Taken before the request: once the daemon is gone its pid may be reused.
    let daemon = daemon_pidfd(paths);
    match client.request(&Request::Kill)? {
        Response::Killed => {
            wait_for_exit(paths, daemon);
            crate::output::say(
                "all apps stopped and removed, daemon killed (`pmx resurrect` brings back the last `pmx save`)",
            );
            Ok(())
        }
        Response::Error(f) => Err(CliError::Failed(f.message)),
        other => Err(CliError::Failed(format!("unexpected answer: {other:?}"))),
    }
}

/// A pidfd on the running daemon, from the pid its lock file holds.
fn daemon_pidfd(paths: &Paths) -> Option<std::os::fd::OwnedFd> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let pid: i32 = std::fs::read_to_string(paths.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// The daemon exits right after answering `kill`. Its lock frees a moment before the process
/// ends, so the process itself is waited for (its pidfd turns readable) when it can be.
fn wait_for_exit(paths: &Paths, daemon: Option<std::os::fd::OwnedFd>) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::fs::{FlockOperation, flock};
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
    if let Some(pidfd) = daemon {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        let limit = Timespec {
            tv_sec: LIMIT.as_secs() as i64,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&limit)).is_ok() {
            return;
        }
    }
    let Ok(file) = std::fs::File::open(paths.pid_file()) else {
        return;
    };
    let deadline = std::time::Instant::now() + LIMIT;
    while flock(&file, FlockOperation::NonBlockingLockShared).is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
