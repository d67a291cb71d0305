//! `pmx`: the one binary. The CLI talks to the daemon over its socket; `pmx daemon` runs the
//! daemon in the foreground. Exit codes: 0 ok, 1 the operation failed, 2 usage or config error.

mod args;
mod client;
mod commands;
mod output;
mod render;
mod serve_files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pmx_core::paths::Paths;

use crate::args::{Cli, Verb};

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad input from the user: exit 2.
    Usage(String),
    /// The operation failed: exit 1.
    Failed(String),
    /// The connection to the daemon broke: exit 1.
    Lost(String),
}

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

/// clap's usage error in one line: its first paragraph (which names what is missing or
/// wrong, the names on lines of their own) and the usage of the verb.
fn one_line_usage_error(text: &str) -> String {
    let mut paragraphs = text.split("\n\n");
    let what: Vec<&str> = paragraphs
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    let what = what.trim_start_matches("error: ");
    let what = if what.is_empty() {
        "invalid usage"
    } else {
        what
    };
    let usage = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| format!(" (usage: {u}; see `pmx --help`)"));
    format!(
        "{what}{}",
        usage.as_deref().unwrap_or(" (see `pmx --help`)")
    )
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

/// The exit code of a result, with the error on stderr.
fn report(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("pmx: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(message)) => {
            eprintln!("pmx: {message}");
            ExitCode::from(1)
        }
        Err(CliError::Lost(error)) => {
            eprintln!("pmx: lost the connection to the daemon: {error}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn usage_error(args: &[&str]) -> String {
        let e = Cli::try_parse_from(args).expect_err("a usage error");
        one_line_usage_error(&e.render().to_string())
    }

    #[test]
    fn a_usage_error_names_what_is_missing_in_one_line() {
        let text = usage_error(&["pmx", "history"]);
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("the following required arguments were not provided: <TARGET>"),
            "{text}"
        );
        assert!(text.contains("usage: pmx history"), "{text}");
        let text = usage_error(&["pmx", "start", "x", "--no-such-flag"]);
        assert!(text.contains("--no-such-flag"), "{text}");
    }
}
