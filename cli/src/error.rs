//! How the CLI fails: `CliError` says what went wrong, and so the exit code (0 ok, 1 the
//! operation failed, 2 usage or config error, 3 done in part); `report` prints it on stderr
//! in one line.

use std::process::ExitCode;

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad input from the user: exit 2.
    Usage(String),
    /// The operation failed: exit 1.
    Failed(String),
    /// The connection to the daemon broke: exit 1.
    Lost(String),
    /// Done, but not all of it as asked (what was not is already printed): exit 3.
    Incomplete,
}

/// The exit code of a result, with the error on stderr.
pub fn report(result: Result<(), CliError>) -> ExitCode {
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
        Err(CliError::Incomplete) => ExitCode::from(3),
    }
}

/// clap's usage error in one line: its first paragraph (which names what is missing or
/// wrong, the names on lines of their own) and the usage of the verb.
pub fn one_line_usage_error(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
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
