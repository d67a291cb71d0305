//! `stop`, `restart`, `delete`, `reset`, `sendSignal`: one request each, then the list.

use pmx_core::paths::Paths;
use pmx_core::protocol::{
    OptionChanges, ReloadRequest, Request, Response, ReviseRequest, RollbackRequest, ScaleRequest,
    SignalRequest, Targets, Unchanged, WatchChange,
};
use pmx_core::signal::parse_signal;

use super::up::{is_config, load, pick_only, restart_with_env, show_plan};
use super::{ask, processes};
use crate::args::{
    ReloadArgs, RestartArgs, RollbackArgs, SignalArgs, StopArgs, TargetArgs, UpArgs,
};
use crate::error::CliError;
use crate::render;

fn act(paths: &Paths, verb: &str, request: Request, targets: &[String]) -> Result<(), CliError> {
    let affected = processes(ask(paths, &request)?)?;
    render::action(verb, &targets.join(" "), &affected);
    super::list::list(paths)
}

/// A config file that exists stands for the apps it declares (`pmx stop ecosystem.json`), as
/// does `-`, a config on stdin (`cat app.json | pmx delete -`).
fn is_config_file(target: &str) -> bool {
    is_config(target) && (target == "-" || std::path::Path::new(target).is_file())
}

/// The targets with each config file replaced by the names of its apps, and each other file
/// by its absolute path (`pmx stop echo.js` stops the apps running that script, as in PM2).
/// `only`: of a config file, these apps (comma separated).
fn expand(
    targets: &[String],
    env_name: Option<&str>,
    only: Option<&str>,
) -> Result<Targets, CliError> {
    let mut out = Vec::new();
    for target in targets {
        if is_config_file(target) {
            let (mut apps, _) = load(target, env_name)?;
            pick_only(&mut apps, only, target)?;
            out.extend(apps.into_iter().map(|a| a.name));
        } else if let Some(script) = script_path(target) {
            out.push(script);
        } else {
            out.push(target.clone());
        }
    }
    Ok(Targets {
        targets: out,
        force: false,
    })
}

/// The absolute path of a target that reads as a file's path (`echo.js`, `./api`, `bin/web`)
/// and is one; a bare word (`api`) stays a name even when a file of that name is here.
fn script_path(target: &str) -> Option<String> {
    let path = std::path::Path::new(target);
    let looks_like_a_path = target.contains(['.', '/']) && !target.ends_with('/');
    if !looks_like_a_path || !path.is_file() {
        return None;
    }
    Some(
        std::path::absolute(path)
            .ok()?
            .to_string_lossy()
            .into_owned(),
    )
}

pub fn stop(paths: &Paths, t: StopArgs) -> Result<(), CliError> {
    let targets = Targets {
        force: t.force,
        ..expand(&t.targets, None, t.only.as_deref())?
    };
    act(paths, "stop", Request::Stop(targets), &t.targets)
}

/// `reload`: instances replaced one by one (`--parallel N` at once). With `--update-env`, a
/// restart with the new environment, as `restart --update-env`.
pub fn reload(paths: &Paths, r: ReloadArgs) -> Result<(), CliError> {
    if r.restart.update_env || !option_changes(&r.restart).is_empty() {
        return restart(paths, r.restart, "reload");
    }
    let Some(names) = converge_files(paths, &r.restart, Unchanged::Reload)? else {
        return super::list::list(paths);
    };
    let targets = expand(&names, None, None)?.targets;
    let request = Request::Reload(ReloadRequest {
        targets,
        parallel: r.parallel,
    });
    let list = match ask(paths, &request)? {
        Response::Processes(list) => list,
        other => return Err(super::unexpected(other)),
    };
    for note in &list.notes {
        crate::output::say(note);
    }
    render::action("reload", &r.restart.targets.join(" "), &list.processes);
    super::list::list(paths)
}

/// `restart`. With `--update-env`, the apps take this command's environment (and a config
/// file's declared one): a config revision.
pub fn restart(paths: &Paths, r: RestartArgs, verb: &str) -> Result<(), CliError> {
    let options = option_changes(&r);
    if !r.update_env && options.is_empty() {
        let Some(names) = converge_files(paths, &r, Unchanged::Restart)? else {
            return super::list::list(paths);
        };
        let targets = expand(&names, None, None)?;
        return act(paths, verb, Request::Restart(targets), &names);
    }
    let (files, names): (Vec<&String>, Vec<&String>) =
        r.targets.iter().partition(|t| is_config_file(t));
    for file in files {
        restart_with_env(paths, file, r.env.as_deref(), r.only.as_deref())?;
    }
    if !names.is_empty() {
        let names: Vec<String> = names.into_iter().cloned().collect();
        let request = Request::Revise(ReviseRequest {
            targets: expand(&names, None, None)?.targets,
            env: r.update_env.then(super::start::captured_env),
            options,
        });
        show_plan(ask(paths, &request)?)?;
    }
    super::list::list(paths)
}

/// What `restart` (or `reload`) options change in the targeted apps' specs.
fn option_changes(r: &RestartArgs) -> OptionChanges {
    OptionChanges {
        cron_restart: r.cron_restart.clone(),
        interpreter_args: (r.node_args.as_deref())
            .filter(|a| *a != "null")
            .map(|a| a.split_whitespace().map(String::from).collect()),
        // PM2's `--node-args=null` removes them.
        remove_interpreter_args: r.node_args.as_deref() == Some("null"),
        watch: r.watch.then_some(WatchChange::Toggle),
        name: r.name.clone(),
        deep_monitoring: super::start::deep_monitoring_option(),
    }
}

/// `restart FILE` and `reload FILE` as PM2 has them: the file's apps that are not registered
/// are started, the others restarted (or reloaded) with the file's options, as `start FILE`
/// does. The other targets are returned, `None` when there are none.
fn converge_files(
    paths: &Paths,
    r: &RestartArgs,
    unchanged: Unchanged,
) -> Result<Option<Vec<String>>, CliError> {
    let (files, names): (Vec<&String>, Vec<&String>) =
        r.targets.iter().partition(|t| is_config_file(t));
    for file in files {
        let up = UpArgs {
            file: file.clone(),
            env: r.env.clone(),
            only: r.only.clone(),
            prune: false,
            dry_run: false,
            unchanged,
        };
        super::up::run(paths, up)?;
    }
    Ok((!names.is_empty()).then(|| names.into_iter().cloned().collect()))
}

pub fn rollback(paths: &Paths, r: RollbackArgs) -> Result<(), CliError> {
    let request = Request::Rollback(RollbackRequest {
        app: r.app,
        to: r.to,
        dry_run: r.dry_run,
    });
    show_plan(ask(paths, &request)?)?;
    if r.dry_run {
        return Ok(());
    }
    super::list::list(paths)
}

pub fn delete(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(
        paths,
        "delete",
        Request::Delete(expand(&t.targets, None, t.only.as_deref())?),
        &t.targets,
    )
}

pub fn reset(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    act(
        paths,
        "reset",
        Request::Reset(expand(&t.targets, None, t.only.as_deref())?),
        &t.targets,
    )
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
    crate::output::say(&format!("saved {} apps: {}", names.len(), names.join(", ")));
    Ok(())
}

pub fn resurrect(paths: &Paths) -> Result<(), CliError> {
    let affected = processes(ask(paths, &Request::Resurrect)?)?;
    render::action("resurrect", "saved apps", &affected);
    super::list::list(paths)
}

/// `pmx scale APP N|+N|-N`.
pub fn scale(
    paths: &Paths,
    app: String,
    count: pmx_core::protocol::ScaleCount,
) -> Result<(), CliError> {
    let request = Request::Scale(ScaleRequest {
        target: app.clone(),
        count,
    });
    act(paths, "scale", request, &[app])
}
