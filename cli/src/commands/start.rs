//! `pmx start SCRIPT ...`: builds an `AppSpec` from the flags and the caller's environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pmx_core::logs::LogType;
use pmx_core::paths::Paths;
use pmx_core::protocol::{
    FailureKind, OptionChanges, Request, Response, ReviseRequest, ScaleCount, ScaleRequest,
    StartRequest, Targets, Unchanged, WatchChange,
};
use pmx_core::signal::parse_signal;
use pmx_core::spec::{AppOptions, AppSpec, Interpreter, RestartPolicy, default_name};

use super::{ask, processes};
use crate::args::{StartArgs, UpArgs};
use crate::error::CliError;
use crate::render;

/// Variables pmx sets itself; an app started from inside another app must not inherit them.
const OWN_VARS: &[&str] = &["PMX_ID", "PMX_NAME", "NODE_APP_INSTANCE", "PMX_RUN_TOKEN"];

pub fn spec_from(args: StartArgs) -> Result<AppSpec, CliError> {
    let here = std::env::current_dir()
        .map_err(|e| CliError::Failed(format!("cannot read the current directory: {e}")))?;
    let cwd = match &args.cwd {
        Some(dir) => here.join(dir),
        None => here,
    };
    let script = absolute_script(&args.script, &cwd);
    let mut env = BTreeMap::new();
    for pair in &args.env {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::Usage(format!(
                "invalid --env `{pair}`: expected K=V"
            )));
        };
        env.insert(key.to_string(), value.to_string());
    }
    let kill_signal = match &args.kill_signal {
        Some(s) => {
            parse_signal(s).ok_or_else(|| CliError::Usage(format!("unknown signal `{s}`")))?
        }
        None => AppSpec::default().kill_signal,
    };
    let defaults = RestartPolicy::default();
    let base_env = captured_env();
    let file = |f: &Option<String>| {
        f.as_ref().map(|f| match f.as_str() {
            f if pmx_core::logs::discards(f) => f.to_string(),
            f => cwd.join(f).to_string_lossy().into_owned(),
        })
    };
    let discard = args.disable_logs.then(|| "/dev/null".to_string());
    let options = AppOptions {
        out_file: discard.clone().or_else(|| file(&args.output)),
        error_file: discard.or_else(|| file(&args.error)),
        log_file: file(&args.log),
        pid_file: args
            .pid
            .as_ref()
            .map(|p| cwd.join(p).to_string_lossy().into_owned()),
        merge_logs: args.merge_logs,
        time: args.time,
        log_date_format: args.log_date_format.clone(),
        log_type: match args.log_type.as_deref() {
            Some("json") => LogType::Json,
            _ => LogType::Raw,
        },
        max_memory_restart_bytes: args.max_memory_restart,
        cron_restart: args.cron_restart.clone(),
        watch: match &args.watch {
            Some(paths) if paths.is_empty() => vec![cwd.to_string_lossy().into_owned()],
            Some(paths) => paths
                .iter()
                .map(|p| cwd.join(p).to_string_lossy().into_owned())
                .collect(),
            None => Vec::new(),
        },
        ignore_watch: args.ignore_watch.clone(),
        listen: args.listen.clone(),
        wait_ready: args.wait_ready,
        listen_timeout_ms: args
            .listen_timeout
            .unwrap_or(AppOptions::default().listen_timeout_ms),
        watch_delay_ms: args
            .watch_delay
            .unwrap_or(AppOptions::default().watch_delay_ms),
        namespace: args
            .namespace
            .clone()
            .unwrap_or(AppOptions::default().namespace),
        shutdown_with_message: args.shutdown_with_message,
        source_map_support: match (args.source_map_support, args.disable_source_map_support) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        // As PM2: `-i` puts a Node app in cluster mode (other interpreters ignore it).
        exec_mode: if args.instances.is_some() {
            "cluster"
        } else {
            "fork"
        }
        .into(),
        vizion: !args.no_vizion,
        deep_monitoring: args.deep_monitoring,
        ..AppOptions::default()
    };
    let mut spec = AppSpec {
        name: args.name.unwrap_or_else(|| default_name(&args.script)),
        script,
        args: args.args,
        interpreter: args
            .interpreter
            .as_deref()
            .map_or(Interpreter::Auto, Interpreter::from_flag),
        interpreter_args: Some(
            (args.interpreter_args.iter())
                .flat_map(|a| a.split_whitespace().map(String::from))
                .collect(),
        ),
        cwd: cwd.to_string_lossy().into_owned(),
        env,
        base_env: std::sync::Arc::new(base_env),
        instances: args.instances.unwrap_or(1),
        restart: RestartPolicy {
            autorestart: !args.no_autorestart,
            max_restarts: args.max_restarts.unwrap_or(defaults.max_restarts),
            min_uptime_ms: args.min_uptime.unwrap_or(defaults.min_uptime_ms),
            restart_delay_ms: args.restart_delay.unwrap_or(defaults.restart_delay_ms),
            exp_backoff_restart_delay_ms: args.exp_backoff_restart_delay,
            stop_exit_codes: args.stop_exit_codes,
        },
        kill_timeout_ms: args
            .kill_timeout
            .unwrap_or(AppSpec::default().kill_timeout_ms),
        kill_signal,
        options,
    };
    apply_env_options(&mut spec);
    Ok(spec)
}

/// A script that exists relative to `cwd` is recorded by its absolute path.
fn absolute_script(script: &str, cwd: &Path) -> String {
    // Without `.` steps: `./app.js` and `app.js` are one script.
    let candidate: PathBuf = cwd.join(script).components().collect();
    if !script.starts_with('/') && candidate.exists() {
        candidate.to_string_lossy().into_owned()
    } else {
        script.to_string()
    }
}

/// `pmx start FILE`: `up` without pruning, and what becomes of the file's apps that did not
/// change is `unchanged` (PM2's `start` restarts them, `startOrReload` reloads them).
fn start_config(paths: &Paths, args: StartArgs, unchanged: Unchanged) -> Result<(), CliError> {
    let up = UpArgs {
        env: args.env.iter().find(|e| !e.contains('=')).cloned(),
        file: args.script,
        only: args.only,
        prune: false,
        dry_run: false,
        unchanged,
    };
    super::up::run(paths, up)
}

pub fn run(paths: &Paths, mut args: StartArgs) -> Result<(), CliError> {
    let more = std::mem::take(&mut args.more_scripts);
    if !more.is_empty() && args.name.is_some() {
        return Err(CliError::Usage(
            "--name names one app: start the scripts one by one to name them".into(),
        ));
    }
    start_one(paths, args.clone())?;
    for script in more {
        start_one(
            paths,
            StartArgs {
                script,
                ..args.clone()
            },
        )?;
    }
    super::list::list(paths)
}

/// Starts one script, binary, config file or registered app.
fn start_one(paths: &Paths, args: StartArgs) -> Result<(), CliError> {
    // `pmx start policies.rhai|ecosystem.config.js [--env production]`: PM2's habit.
    if super::up::is_config(&args.script) {
        return start_config(paths, args, Unchanged::Restart);
    }
    if let Some(new) = &args.name
        && is_registered(paths, &args.script)?
    {
        // PM2's `start 0 --name NEW`: the registered app renamed, then (re)started.
        let revise = Request::Revise(ReviseRequest {
            targets: vec![args.script.clone()],
            env: None,
            options: OptionChanges {
                name: Some(new.clone()),
                ..OptionChanges::default()
            },
        });
        super::up::show_plan(ask(paths, &revise)?)?;
        return super::list::list(paths);
    }
    if let Some(started) = start_registered(paths, &args.script)? {
        render::action("start", &args.script, &started);
        return Ok(());
    }
    let force = args.force;
    let watch = args.watch.is_some();
    let spec = spec_from(args)?;
    let name = spec.name.clone();
    let instances = spec.instances;
    let request = Request::Start(Box::new(StartRequest { spec }));
    let started = match crate::client::Client::connect(paths)?.request(&request)? {
        // PM2's -f: one more instance of the registered app (PM2 would add a second app of the
        // same name); without -f the script is refused as already launched, as in PM2.
        Response::Error(f) if f.kind == FailureKind::Conflict && force => {
            let scale = Request::Scale(ScaleRequest {
                target: name.clone(),
                count: ScaleCount::Up(instances),
            });
            processes(ask(paths, &scale)?)?
        }
        // As PM2: the script's app is registered but nothing of it runs: it is started
        // (`--watch`: watching again, which `stop` paused).
        Response::Error(f) if f.kind == FailureKind::Conflict && !runs(paths, &name)? => {
            if watch {
                let revise = Request::Revise(ReviseRequest {
                    targets: vec![name.clone()],
                    env: None,
                    options: OptionChanges {
                        watch: Some(WatchChange::On),
                        ..OptionChanges::default()
                    },
                });
                super::up::show_plan(ask(paths, &revise)?)?;
                return super::list::list(paths);
            }
            start_registered(paths, &name)?.unwrap_or_default()
        }
        Response::Error(f) => return Err(super::failure(f)),
        other => processes(other)?,
    };
    render::action("start", &name, &started);
    Ok(())
}

/// `pmx serve [PATH] [PORT]`: a static file server app, started as `start` starts one, with
/// PM2's `PM2_SERVE_*` settings in its environment.
pub fn serve(paths: &Paths, args: crate::args::ServeArgs) -> Result<(), CliError> {
    use clap::Parser;
    let (path, port) = match (args.path, args.port) {
        // `pmx serve 8081`: a number alone is the port.
        (Some(p), None) if p.parse::<u16>().is_ok() => (".".to_string(), p.parse().ok()),
        (path, port) => (path.unwrap_or_else(|| ".".into()), port),
    };
    let port = args.port_flag.or(port).unwrap_or(8080);
    let root = std::path::absolute(&path)
        .map_err(|e| CliError::Usage(format!("{path}: {e}")))?
        .to_string_lossy()
        .into_owned();
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find the pmx binary: {e}")))?;
    let name = args
        .name
        .unwrap_or_else(|| format!("static-page-server-{port}"));
    let mut line: Vec<String> = ["pmx", "start"].map(String::from).to_vec();
    line.push(exe.to_string_lossy().into_owned());
    // Online once it listens: the server says so on its channel.
    line.extend(["--name".into(), name, "--interpreter".into(), "none".into()]);
    line.push("--wait-ready".into());
    let mut env = vec![
        format!("PM2_SERVE_PATH={root}"),
        format!("PM2_SERVE_PORT={port}"),
        format!("PM2_SERVE_SPA={}", args.spa),
    ];
    if let Some(home) = args.homepage {
        env.push(format!("PM2_SERVE_HOMEPAGE={home}"));
    }
    if let (Some(user), Some(password)) = (args.basic_auth_username, args.basic_auth_password) {
        env.push("PM2_SERVE_BASIC_AUTH=true".into());
        env.push(format!("PM2_SERVE_BASIC_AUTH_USERNAME={user}"));
        env.push(format!("PM2_SERVE_BASIC_AUTH_PASSWORD={password}"));
    }
    for var in env {
        line.extend(["--env".into(), var]);
    }
    line.extend(["--".into(), "serve-files".into()]);
    let crate::args::Cli { command } =
        crate::args::Cli::try_parse_from(&line).map_err(|e| CliError::Usage(e.to_string()))?;
    match command {
        crate::args::Verb::Start(start) => run(paths, *start.0),
        _ => Err(CliError::Usage("serve: unexpected command".into())),
    }
}

/// `pmx startOrReload FILE`: the file's new apps started, its registered ones reloaded (one
/// instance at a time). Anything but a config file is started as `start` does.
pub fn start_or_reload(paths: &Paths, args: StartArgs) -> Result<(), CliError> {
    if !super::up::is_config(&args.script) {
        return run(paths, args);
    }
    start_config(paths, args, Unchanged::Reload)?;
    super::list::list(paths)
}

/// `pmx start api` (or an id) where no such file exists: PM2 starts the registered app of that
/// name, or restarts it when it runs. `None` when the daemon knows no such app (then it is a
/// script, maybe a missing one).
fn start_registered(
    paths: &Paths,
    target: &str,
) -> Result<Option<Vec<pmx_core::view::ProcessView>>, CliError> {
    if target.contains(['/', ' ']) || Path::new(target).exists() {
        return Ok(None);
    }
    let request = Request::StartApps(Targets {
        targets: vec![target.to_string()],
        force: false,
    });
    match crate::client::Client::connect(paths)?.request(&request)? {
        Response::Error(f) if f.kind == FailureKind::NotFound => Ok(None),
        Response::Error(f) => Err(super::failure(f)),
        other => processes(other).map(Some),
    }
}

/// Whether `target` (not a file) names a registered app or one of its ids.
fn is_registered(paths: &Paths, target: &str) -> Result<bool, CliError> {
    if target.contains(['/', ' ']) || Path::new(target).exists() {
        return Ok(false);
    }
    let list = processes(ask(paths, &Request::List)?)?;
    Ok(list
        .iter()
        .any(|p| p.name == target || p.id.to_string() == target))
}

/// Whether an instance of app `name` runs (or is starting, or stopping).
fn runs(paths: &Paths, name: &str) -> Result<bool, CliError> {
    use pmx_core::state::Status;
    let list = processes(ask(paths, &Request::List)?)?;
    Ok(list
        .iter()
        .any(|p| p.name == name && !matches!(p.status, Status::Stopped | Status::Errored)))
}

/// An option PM2 also reads from its environment: `PMX_<NAME>` first, then `PM2_<NAME>`.
pub fn env_option(name: &str) -> Option<String> {
    ["PMX_", "PM2_"]
        .iter()
        .find_map(|prefix| std::env::var(format!("{prefix}{name}")).ok())
        .filter(|v| !v.is_empty())
}

/// Applies the options the environment sets for every app started (PM2's
/// `PM2_KILL_USE_MESSAGE=true`: stop apps with the shutdown message).
pub fn apply_env_options(spec: &mut AppSpec) {
    if env_option("KILL_USE_MESSAGE").is_some_and(|v| v == "true" || v == "1") {
        spec.options.shutdown_with_message = true;
    }
    if let Some(deep) = deep_monitoring_option() {
        spec.options.deep_monitoring = deep;
    }
}

/// PM2's `PM2_DEEP_MONITORING=true|false` (`PMX_` first), when set.
pub fn deep_monitoring_option() -> Option<bool> {
    env_option("DEEP_MONITORING").map(|v| v == "true" || v == "1")
}

/// The environment apps get, as PM2 captures it: this command's, without pmx's own variables.
pub fn captured_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| !OWN_VARS.contains(&k.as_str()))
        .collect()
}
