//! `pmx`: the one binary. The CLI talks to the daemon over its socket; `pmx daemon` runs the
//! daemon in the foreground. Exit codes: 0 ok, 1 the operation failed, 2 usage or config error.

mod args;
mod client;
mod commands;
mod error;
mod output;
mod render;
mod serve_files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pmx_core::paths::Paths;

use crate::args::{Cli, Verb};
use crate::error::{one_line_usage_error, report};

fn paths() -> Paths {
    Paths::from_env(|| PathBuf::from(format!("/tmp/.pmx-{}", rustix::process::getuid().as_raw())))
}

/// Parses the command line; a usage error is one line on stderr and exit code 2.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            eprintln!("pmx: {}", one_line_usage_error(&e.render().to_string()));
            Err(ExitCode::from(2))
        }
    }
}

/// Whether the command line is exactly `pmx jlist`.
fn plain_jlist() -> bool {
    let mut args = std::env::args_os().skip(1);
    args.next().is_some_and(|verb| verb == "jlist") && args.next().is_none()
}

fn main() -> ExitCode {
    // `jlist` is what scripts and monitors poll: it skips building the parser, whose tree of
    // every verb and flag is most of a short command's own work (about 200 KiB of heap).
    if plain_jlist() {
        return report(commands::list::jlist(&paths()));
    }
    // The daemon program's own arguments: `pmx update` executes this binary as it would a
    // `pmxd` when none stands beside it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a.starts_with("--settings") || a.starts_with("--handoff"))
        && let Some(code) = pmx_actors::daemon_main(&args)
    {
        return code;
    }
    let mut cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let paths = paths();
    if matches!(cli.command, Verb::Daemon(_)) {
        match commands::daemon::apply_settings_file(&paths) {
            Ok(false) => {}
            Ok(true) => match parse() {
                Ok(again) => cli = again,
                Err(code) => return code,
            },
            Err(e) => return report(Err(e)),
        }
    }
    output::announce_daemon_start(matches!(
        cli.command,
        Verb::Start(_)
            | Verb::StartOrRestart(_)
            | Verb::StartOrReload(_)
            | Verb::Stop(_)
            | Verb::Restart(_)
            | Verb::Reload(_)
            | Verb::Delete(_)
            | Verb::List
            | Verb::Resurrect
            | Verb::Up(_)
            | Verb::Scale { .. }
            | Verb::Serve(_)
    ));
    let result = match cli.command {
        Verb::Daemon(args) => commands::daemon::run(paths, args),
        Verb::Start(args) | Verb::StartOrRestart(args) => commands::start::run(&paths, *args.0),
        Verb::StartOrReload(args) => commands::start::start_or_reload(&paths, *args.0),
        Verb::Stop(t) => commands::control::stop(&paths, t),
        Verb::Restart(r) => commands::control::restart(&paths, r, "restart"),
        Verb::Reload(r) => commands::control::reload(&paths, r),
        Verb::Delete(t) => commands::control::delete(&paths, t),
        Verb::Reset(t) => commands::control::reset(&paths, t),
        Verb::SendSignal(s) => commands::control::send_signal(&paths, s),
        Verb::List => commands::list::list(&paths),
        Verb::Jlist => commands::list::jlist(&paths),
        Verb::Describe(t) => commands::list::describe(&paths, t),
        Verb::History(h) => commands::history::run(&paths, h),
        Verb::Ping => commands::daemon::ping(&paths),
        Verb::Kill => commands::daemon::kill(&paths),
        Verb::Save => commands::control::save(&paths),
        Verb::Resurrect => commands::control::resurrect(&paths),
        Verb::Startup(args) => commands::startup::startup(&paths, args),
        Verb::Unstartup {
            platform,
            user,
            service_name,
        } => commands::startup::unstartup(platform, user, service_name),
        Verb::Env(t) => commands::list::env(&paths, t),
        Verb::Logs(args) => commands::logs::logs(&paths, args),
        Verb::Flush(args) => commands::logs::flush(&paths, args),
        Verb::ReloadLogs => commands::logs::reload_logs(&paths),
        Verb::Up(args) => commands::up::run(&paths, args),
        Verb::Export(args) => commands::export::run(&paths, args),
        Verb::Update { binary } => commands::daemon::update(&paths, binary),
        Verb::Rollback(r) => commands::control::rollback(&paths, r),
        Verb::Ecosystem { file, force } => commands::up::ecosystem(&file, force),
        Verb::Convert { file } => commands::up::convert(&file),
        Verb::Set { key, value } => commands::conf::set(&paths, &[(key, value)]),
        Verb::Multiset { pairs } => commands::conf::multiset(&paths, &pairs),
        Verb::Unset { key } => commands::conf::unset(&paths, &key),
        Verb::Get { key } => commands::conf::get(&paths, key.as_deref()),
        Verb::Scale { app, count } => commands::control::scale(&paths, app, count),
        Verb::Rules { json } => commands::list::rules(&paths, json),
        Verb::Monit => commands::monit::run(&paths),
        Verb::Dashboard { token } => commands::daemon::dashboard(&paths, token),
        Verb::Serve(args) => commands::start::serve(&paths, args),
        Verb::ServeFiles => serve_files::run(),
    };
    report(result)
}
