//! The daemon as a process: the settings `pmx daemon` resolved (flags, environment,
//! daemon.toml), handed to the daemon binary as JSON, and `serve`, which sets up the process
//! (one malloc arena, the panic hook, the descriptor limit, child subreaper, SIGTERM/SIGINT as
//! shutdown, the handoff of a `pmx update`) and runs the daemon. Both
//! `pmxd` and `pmx daemon` (when no `pmxd` stands beside it) start here.

use std::net::SocketAddr;

use pmx_core::logs::Rotation;
use pmx_core::paths::Paths;
use pmx_storage::Retention;
use serde::{Deserialize, Serialize};

use crate::{DaemonConfig, DaemonError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub retention_days: u64,
    pub retention_events: usize,
    pub rotation: Rotation,
    pub sample_interval_ms: u64,
    pub http: Option<SocketAddr>,
}

/// The soft descriptor limit is raised to this much (or the hard limit, if lower): every app
/// costs the daemon a few descriptors (pipes, pidfd, channel), and the usual soft limit of
/// 1024 is too few for a few hundred apps. Apps inherit it.
const FD_LIMIT: u64 = 65_536;

fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let wanted = FD_LIMIT.min(hard);
    if limit.current.is_some_and(|soft| soft < wanted) {
        limit.current = Some(wanted);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            crate::say!("pmx: cannot raise the descriptor limit to {wanted}: {e}");
        }
    }
}

/// The daemon program's own arguments, as `pmx daemon` and `pmx update` execute it:
/// `--settings JSON` (`PMX_HOME` set) runs the daemon; `--handoff-check` says which
/// handoffs it adopts. `None` for any other command line.
pub fn daemon_main(args: &[String]) -> Option<std::process::ExitCode> {
    use std::process::ExitCode;
    match args {
        [flag] if flag == pmx_core::handoff::CHECK_FLAG => {
            println!("{}", pmx_core::handoff::check_line());
            Some(ExitCode::SUCCESS)
        }
        [flag, json] if flag == "--settings" => {
            let Some(home) = std::env::var_os("PMX_HOME").filter(|h| !h.is_empty()) else {
                eprintln!("pmxd: run by `pmx daemon` (PMX_HOME set, --settings JSON)");
                return Some(ExitCode::from(2));
            };
            let settings = match serde_json::from_str(json) {
                Ok(settings) => settings,
                Err(e) => {
                    eprintln!("pmxd: malformed settings: {e}");
                    return Some(ExitCode::from(2));
                }
            };
            Some(match serve(Paths::new(home), settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pmx: {e}");
                    ExitCode::from(e.exit_code())
                }
            })
        }
        _ => None,
    }
}

/// Runs the daemon until SIGTERM/SIGINT or `pmx kill`. Only here are signal handlers and the
/// panic hook installed: call it from `main` before any thread starts.
pub fn serve(paths: Paths, settings: Settings) -> Result<(), DaemonError> {
    // glibc gives each thread its own malloc arena; the daemon's few threads allocate
    // little, so one arena keeps its resident memory small.
    // SAFETY: called before the daemon starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    std::panic::set_hook(Box::new(|info| {
        crate::say!("pmx daemon: internal error: {info}");
    }));
    raise_fd_limit();
    // Orphaned descendants of apps are reparented to us, so a stop can still find them.
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        crate::say!(
            "pmx: cannot become child subreaper ({e}); descendants that double-fork may escape"
        );
    }
    // Executed by a previous daemon of this process (`pmx update`): what it handed over.
    let handoff = match crate::update::take() {
        Some(Ok(handoff)) => Some(handoff),
        Some(Err(why)) => {
            crate::say!("pmx: {why}: its processes are taken over instead");
            None
        }
        None => None,
    };
    let shutdown = || async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let relaunch = serde_json::to_string(&settings).ok();
    let config = DaemonConfig {
        paths,
        retention: Retention::new(settings.retention_days, settings.retention_events),
        rotation: settings.rotation,
        sample_interval: std::time::Duration::from_millis(settings.sample_interval_ms),
        http: settings.http,
        relaunch,
        handoff,
    };
    crate::run(config, shutdown)
}
