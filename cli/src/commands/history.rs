//! `pmx history APP`: an app's journal, oldest first, with causes; `--follow` streams.

use pmx_core::Millis;
use pmx_core::event::Event;
use pmx_core::paths::Paths;
use pmx_core::protocol::{HistoryRequest, Request, Response, RetentionCut};
use pmx_core::units::parse_duration_ms;

use crate::args::HistoryArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::println;
use crate::render;

/// `10m` (that long ago) or an RFC 3339 timestamp, in ms since the epoch.
fn parse_time(flag: &str, value: &str, now: Millis) -> Result<Millis, CliError> {
    if let Ok(ago) = parse_duration_ms(value) {
        return Ok(now.saturating_sub(ago));
    }
    pmx_core::time::parse_timestamp_ms(value).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid {flag} `{value}`: a duration ago (10m, 2h) or a timestamp (2026-11-21T10:00:00Z)"
            ))
        })
}

fn print(events: &[Event], json: bool) {
    for event in events {
        if json {
            println(&serde_json::to_string(event).unwrap_or_default());
        } else {
            println(&render::history_line(event));
        }
    }
}

pub fn run(paths: &Paths, args: HistoryArgs) -> Result<(), CliError> {
    let now = render::now_ms();
    let time = |flag, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| parse_time(flag, v, now))
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let mut request = HistoryRequest {
        target: args.target,
        limit: args.limit,
        since,
        until: time("--until", &args.until)?,
        instance: args.instance,
        after_seq: None,
        follow: args.follow,
    };
    let mut client = Client::connect(paths)?;
    let mut response = match client.request(&Request::History(request.clone())) {
        // Accepted by a daemon that was handing over to its update: ask the new one.
        Err(CliError::Lost(e)) if args.follow => {
            client = Client::follow_again(paths, e)?;
            client.request(&Request::History(request.clone()))?
        }
        other => other?,
    };
    let mut first = true;
    let mut last_seq = None;
    loop {
        match response {
            Response::History(list) => {
                // Say where the record starts when what is shown reaches back to the cut.
                let reaches_cut = |cut: &RetentionCut| {
                    args.limit.is_none_or(|l| list.events.len() < l)
                        && since.is_none_or(|s| s <= cut.through_at)
                };
                if let Some(cut) = list.cut.filter(|c| first && reaches_cut(c)) {
                    let line = render::retention_line(&cut);
                    if args.json {
                        eprintln!("{line}");
                    } else {
                        println(&line);
                    }
                }
                first = false;
                last_seq = list.events.last().map(|e| e.seq).or(last_seq);
                print(&list.events, args.json);
                // A long history comes in pages; a follower's pages come on their own.
                if let Some(after) = list.next_after.filter(|_| !args.follow) {
                    request.after_seq = Some(after);
                    request.limit = None;
                    response = client.request(&Request::History(request.clone()))?;
                    continue;
                }
            }
            Response::Error(f) => return Err(super::failure(f)),
            other => return Err(super::unexpected(other)),
        }
        if !args.follow {
            return Ok(());
        }
        response = match client.next() {
            // Re-executed by `pmx update`: follow again from the last event shown.
            Err(CliError::Lost(e)) => {
                client = Client::follow_again(paths, e)?;
                request.after_seq = last_seq.or(request.after_seq);
                request.limit = None;
                client.request(&Request::History(request.clone()))?
            }
            other => other?,
        };
    }
}
