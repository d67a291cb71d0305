//! `pmx history APP`: an app's journal, oldest first, with causes.

use pmx_core::paths::Paths;
use pmx_core::protocol::{HistoryRequest, Request, Response};

use super::ask;
use crate::CliError;
use crate::args::HistoryArgs;
use crate::output::println;
use crate::render;

pub fn run(paths: &Paths, args: HistoryArgs) -> Result<(), CliError> {
    let request = Request::History(HistoryRequest {
        target: args.target,
        limit: args.limit,
    });
    let Response::History(list) = ask(paths, &request)? else {
        return Err(CliError::Failed("unexpected answer from the daemon".into()));
    };
    for event in &list.events {
        if args.json {
            println(&serde_json::to_string(event).unwrap_or_default());
        } else {
            println(&render::history_line(event));
        }
    }
    Ok(())
}
