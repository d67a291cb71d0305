//! One module per verb family; each sends one request and renders the answer.

pub mod conf;
pub mod control;
pub mod daemon;
pub mod export;
pub mod history;
pub mod list;
pub mod logs;
pub mod monit;
pub mod start;
pub mod startup;
pub mod up;

use pmx_core::paths::Paths;
use pmx_core::protocol::{Failure, FailureKind, Request, Response};
use pmx_core::view::ProcessView;

use crate::client::Client;
use crate::error::CliError;

/// Sends one request (starting the daemon if needed) and turns a failure into an exit code.
pub fn ask(paths: &Paths, request: &Request) -> Result<Response, CliError> {
    let response = Client::connect(paths)?.request(request)?;
    match response {
        Response::Error(f) => Err(failure(f)),
        other => Ok(other),
    }
}

/// A daemon's refusal as an exit code: 2 for invalid input, 1 otherwise.
pub fn failure(f: Failure) -> CliError {
    match f.kind {
        FailureKind::Invalid => CliError::Usage(f.message),
        _ => CliError::Failed(f.message),
    }
}

/// The processes of a `Processes` answer.
/// The processes of an answer; what the daemon noted for the user is printed.
pub fn processes(response: Response) -> Result<Vec<ProcessView>, CliError> {
    match response {
        Response::Processes(list) => {
            for note in &list.notes {
                crate::output::say(note);
            }
            Ok(list.processes)
        }
        other => Err(unexpected(other)),
    }
}

/// An answer of the wrong kind for the request.
pub fn unexpected(other: Response) -> CliError {
    CliError::Failed(format!("unexpected answer from the daemon: {other:?}"))
}
