//! `pmx daemon` (foreground), `pmx ping`, `pmx kill`.

use pmx_actors::DaemonConfig;
use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Response};
use pmx_storage::Retention;

use super::ask;
use crate::CliError;
use crate::args::DaemonArgs;
use crate::client::Client;
use crate::output::println;

/// Runs the daemon until SIGTERM/SIGINT or `pmx kill`. Only here are signal handlers and the
/// panic hook installed.
pub fn run(paths: Paths, args: DaemonArgs) -> Result<(), CliError> {
    // glibc gives each thread its own malloc arena; the daemon's few threads allocate
    // little, so one arena keeps its resident memory small.
    // SAFETY: called before the daemon starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    std::panic::set_hook(Box::new(|info| {
        eprintln!("pmx daemon: internal error: {info}");
    }));
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
    let retention = Retention::new(args.retention_days, args.retention_events);
    let rotation = pmx_core::logs::Rotation {
        max_size_bytes: args.log_max_size,
        retain: args.log_retain,
        compress: args.log_compress,
        date_format: args.log_date_format,
        interval: args.log_rotate_interval,
    };
    let config = DaemonConfig {
        paths,
        retention,
        rotation,
        sample_interval: std::time::Duration::from_millis(args.sample_interval),
    };
    pmx_actors::run(config, shutdown).map_err(|e| CliError::Failed(e.to_string()))
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

pub fn kill(paths: &Paths) -> Result<(), CliError> {
    let Some(mut client) = Client::try_connect(paths)? else {
        println("no pmx daemon runs");
        return Ok(());
    };
    match client.request(&Request::Kill)? {
        Response::Killed => {
            wait_for_exit(paths);
            println("all apps stopped, daemon killed");
            Ok(())
        }
        Response::Error(f) => Err(CliError::Failed(f.message)),
        other => Err(CliError::Failed(format!("unexpected answer: {other:?}"))),
    }
}

/// The daemon exits right after answering `kill`; it is gone when its lock is free.
fn wait_for_exit(paths: &Paths) {
    use rustix::fs::{FlockOperation, flock};
    let Ok(file) = std::fs::File::open(paths.pid_file()) else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while flock(&file, FlockOperation::NonBlockingLockShared).is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
