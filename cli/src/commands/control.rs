//! `stop`, `restart`, `delete`, `reset`, `sendSignal`: one request each, then the list.

use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, SignalRequest, Targets};
use pmx_core::signal::parse_signal;

use super::{ask, processes};
use crate::CliError;
use crate::args::{SignalArgs, TargetArgs};
use crate::render;

fn act(paths: &Paths, verb: &str, request: Request, targets: &[String]) -> Result<(), CliError> {
    let affected = processes(ask(paths, &request)?)?;
    render::action(verb, &targets.join(" "), &affected);
    super::list::list(paths)
}

fn targets(t: &TargetArgs) -> Targets {
    Targets {
        targets: t.targets.clone(),
    }
}

pub fn stop(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(paths, "stop", Request::Stop(targets(&t)), &t.targets)
}

pub fn restart(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(paths, "restart", Request::Restart(targets(&t)), &t.targets)
}

pub fn delete(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(paths, "delete", Request::Delete(targets(&t)), &t.targets)
}

pub fn reset(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(paths, "reset", Request::Reset(targets(&t)), &t.targets)
}

pub fn send_signal(paths: &Paths, s: SignalArgs) -> Result<(), CliError> {
    let signal = parse_signal(&s.signal)
        .ok_or_else(|| CliError::Usage(format!("unknown signal `{}`", s.signal)))?;
    let request = Request::SendSignal(SignalRequest {
        signal,
        targets: s.targets.clone(),
    });
    let affected = processes(ask(paths, &request)?)?;
    render::action(
        &format!("sendSignal {}", pmx_core::signal::signal_name(signal)),
        &s.targets.join(" "),
        &affected,
    );
    Ok(())
}

pub fn save(paths: &Paths) -> Result<(), CliError> {
    let saved = processes(ask(paths, &Request::Save)?)?;
    let mut names: Vec<&str> = saved.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    crate::output::println(&format!(
        "[PMX] saved {} apps: {}",
        names.len(),
        names.join(", ")
    ));
    Ok(())
}

pub fn resurrect(paths: &Paths) -> Result<(), CliError> {
    let affected = processes(ask(paths, &Request::Resurrect)?)?;
    render::action("resurrect", "saved apps", &affected);
    super::list::list(paths)
}
