//! `pmx logs`, `pmx flush`, `pmx reloadLogs`. `logs` asks the daemon which files belong to
//! the targets, prints their last lines itself, then streams new lines from the daemon.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;

use pmx_core::logs::{Stream, strftime_of};
use pmx_core::paths::Paths;
use pmx_core::protocol::{LogSource, LogsRequest, Request, Response, Targets};

use super::{ask, failure, unexpected};
use crate::args::{FlushArgs, LogsArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::println;
use pmx_core::log_tail::last_lines;

/// How lines are printed.
struct Printer {
    raw: bool,
    json: bool,
    timestamp: Option<String>,
    colour: bool,
    width: usize,
}

const COLOURS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

impl Printer {
    fn line(&self, app: &str, id: u32, stream: Stream, at: Option<u64>, text: &str) {
        if self.json {
            let record = serde_json::json!({
                "app": app, "id": id, "stream": stream.name(), "timestamp": at, "message": text,
            });
            return println(&record.to_string());
        }
        let stamp = match (&self.timestamp, at) {
            (Some(format), Some(at)) => format!("{} ", pmx_core::time::format_local(at, format)),
            _ => String::new(),
        };
        if self.raw {
            return println(&format!("{stamp}{text}"));
        }
        // stderr lines are marked `!` (and red on a terminal), stdout lines `|`.
        let bar = if stream == Stream::Err { "!" } else { "|" };
        let label = format!("{id}|{app:<w$}", w = self.width);
        if self.colour {
            let c = COLOURS[id as usize % COLOURS.len()];
            let b = if stream == Stream::Err { "31" } else { "32" };
            println(&format!(
                "\x1b[{c}m{label}\x1b[0m \x1b[{b}m{bar}\x1b[0m {stamp}{text}"
            ));
        } else {
            println(&format!("{label} {bar} {stamp}{text}"));
        }
    }
}

/// `/re/` is a regex over app names; anything else goes to the daemon as a target.
fn name_pattern(target: &str) -> Result<Option<regex_lite::Regex>, CliError> {
    let Some(inner) = target.strip_prefix('/').and_then(|t| t.strip_suffix('/')) else {
        return Ok(None);
    };
    regex_lite::Regex::new(inner)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("invalid regex {target}: {e}")))
}

fn sources(paths: &Paths, targets: Vec<String>) -> Result<Vec<LogSource>, CliError> {
    let request = Request::Logs(LogsRequest {
        targets,
        follow: false,
    });
    match ask(paths, &request)? {
        Response::LogSources(s) => Ok(s.sources),
        other => Err(unexpected(other)),
    }
}

pub fn logs(paths: &Paths, args: LogsArgs) -> Result<(), CliError> {
    let target = args.target.clone().unwrap_or_else(|| "all".into());
    let pattern = name_pattern(&target)?;
    let asked = if pattern.is_some() {
        "all".to_string()
    } else {
        target.clone()
    };
    let mut found = sources(paths, vec![asked])?;
    if let Some(re) = &pattern {
        found.retain(|s| re.is_match(&s.app));
        if found.is_empty() {
            return Err(CliError::Failed(format!("no app name matches {target}")));
        }
    }
    let streams: Vec<Stream> = match (args.out, args.err) {
        (true, false) => vec![Stream::Out],
        (false, true) => vec![Stream::Err],
        _ => vec![Stream::Out, Stream::Err],
    };
    found.retain(|s| streams.contains(&s.stream));
    let printer = Printer {
        raw: args.raw,
        json: args.json,
        timestamp: args.timestamp.as_deref().map(strftime_of),
        colour: std::io::stdout().is_terminal() && !args.raw && !args.json,
        width: found.iter().map(|s| s.app.len()).max().unwrap_or(0),
    };
    let heading = !args.raw && !args.json;
    if args.lines > 0 {
        for source in &found {
            let lines = last_lines(Path::new(&source.path), args.lines);
            if heading {
                println(&format!("{} last {} lines:", source.path, args.lines));
            }
            for line in lines {
                let text = String::from_utf8_lossy(&line);
                printer.line(&source.app, source.id, source.stream, None, &text);
            }
        }
    }
    if args.nostream {
        return Ok(());
    }
    // Follow the instances found, by name (a regex picked them; ids of one app stay).
    let apps: BTreeSet<String> = found.iter().map(|s| s.app.clone()).collect();
    let targets = if pattern.is_some() {
        apps.into_iter().collect()
    } else {
        vec![target]
    };
    follow(paths, targets, &streams, &printer)
}

/// Follows until the daemon ends; a daemon re-executed by `pmx update` is followed again.
fn follow(
    paths: &Paths,
    targets: Vec<String>,
    streams: &[Stream],
    printer: &Printer,
) -> Result<(), CliError> {
    let mut client = Client::connect(paths)?;
    loop {
        match follow_once(client, targets.clone(), streams, printer) {
            Err(CliError::Lost(e)) => client = Client::follow_again(paths, e)?,
            other => return other,
        }
    }
}

fn follow_once(
    mut client: Client,
    targets: Vec<String>,
    streams: &[Stream],
    printer: &Printer,
) -> Result<(), CliError> {
    let first = client.request(&Request::Logs(LogsRequest {
        targets,
        follow: true,
    }))?;
    match first {
        Response::LogSources(_) => {}
        Response::Error(f) => return Err(failure(f)),
        other => return Err(unexpected(other)),
    }
    loop {
        match client.next()? {
            Response::LogLines(batch) => {
                if batch.missed > 0 {
                    eprintln!(
                        "[PMX] this follower fell behind: {} lines were skipped (they are in the files)",
                        batch.missed
                    );
                }
                for l in batch.lines.iter().filter(|l| streams.contains(&l.stream)) {
                    printer.line(&l.app, l.id, l.stream, Some(l.at), &l.text);
                }
            }
            Response::Error(f) => return Err(failure(f)),
            other => return Err(unexpected(other)),
        }
    }
}

pub fn flush(paths: &Paths, args: FlushArgs) -> Result<(), CliError> {
    let targets = if args.targets.is_empty() {
        vec!["all".into()]
    } else {
        args.targets
    };
    match ask(
        paths,
        &Request::Flush(Targets {
            targets,
            force: false,
        }),
    )? {
        Response::LogSources(s) => {
            for source in &s.sources {
                crate::output::say(&format!("flushed {}", source.path));
            }
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

pub fn reload_logs(paths: &Paths) -> Result<(), CliError> {
    match ask(paths, &Request::ReloadLogs)? {
        Response::LogSources(s) => {
            crate::output::say(&format!(
                "reopened the log files of {} instances",
                s.sources.len() / 2
            ));
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}
