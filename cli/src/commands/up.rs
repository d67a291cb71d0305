//! `pmx up FILE`: evaluate a config (here, in the sandbox), send the apps it declares, print
//! the plan like a diff. A config that fails changes nothing and is journaled. Also the other
//! verbs that read a config: `restart FILE --update-env`, `ecosystem`, `convert`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pmx_core::paths::Paths;
use pmx_core::protocol::{
    PlanReport, RejectedConfig, Request, Response, RulesScript, Unchanged, UpRequest,
};
use pmx_core::spec::AppSpec;
use pmx_scripting::{Config, EvalOptions, Format, evaluate_config};

use super::start::captured_env;
use super::{ask, unexpected};
use crate::args::UpArgs;
use crate::error::CliError;
use crate::output::println;

/// A stable fingerprint of the config's text for the journal.
fn fingerprint(text: &str) -> String {
    pmx_core::fingerprint::fingerprint(text.as_bytes())
}

/// The config file name that stands for standard input (`pmx start -`).
const STDIN: &str = "-";

/// Whether a `pmx start`/`restart`/`stop`/`delete` argument names a config file rather than
/// a script or an app: a Rhai, JSON, YAML or TOML file, `*.config.js` as PM2 has it, or `-`.
pub fn is_config(target: &str) -> bool {
    if target == STDIN {
        return true;
    }
    let path = Path::new(target);
    match Format::of(path) {
        Some(Format::Js) => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            stem.ends_with(".config") || stem == "ecosystem"
        }
        Some(_) => true,
        None => false,
    }
}

/// A config file's apps (and its text, for the fingerprint).
pub fn load(file: &str, env_name: Option<&str>) -> Result<(Vec<AppSpec>, String), ConfigFailure> {
    load_config(file, env_name).map(|(config, source)| (config.apps, source))
}

/// A config file's apps, rules and the variables it read, and its text.
pub fn load_config(file: &str, env_name: Option<&str>) -> Result<(Config, String), ConfigFailure> {
    let unreadable =
        |e: std::io::Error| ConfigFailure::Unreadable(format!("cannot read {file}: {e}"));
    let (path, source) = if file == STDIN {
        // PM2's `cat app.json | pm2 start -`: JSON (or a JavaScript expression) on stdin, read
        // as a .json file in the current directory would be.
        let mut source = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut source).map_err(unreadable)?;
        (
            std::env::current_dir()
                .map_err(unreadable)?
                .join("stdin.json"),
            source,
        )
    } else {
        let source = std::fs::read_to_string(file).map_err(unreadable)?;
        (PathBuf::from(file), source)
    };
    let path = path.as_path();
    let opts = EvalOptions {
        env_name,
        vars: Arc::new(captured_env()),
    };
    let mut config = evaluate_config(path, &source, &opts).map_err(ConfigFailure::Invalid)?;
    config
        .apps
        .iter_mut()
        .for_each(super::start::apply_env_options);
    if let Some(ignored) = &config.warnings {
        eprintln!("pmx: {ignored}");
    }
    Ok((config, source))
}

/// What the daemon needs to run a Rhai config's rules (checked by the evaluation); other
/// formats have none (`None`: the loaded rules stay).
fn rules_of(file: &str, source: &str, config: Config) -> Option<RulesScript> {
    let path = Path::new(file);
    if file == STDIN || Format::of(path).unwrap_or(Format::Rhai) != Format::Rhai {
        return None;
    }
    let source_name = path
        .canonicalize()
        .map_or_else(|_| file.to_string(), |p| p.display().to_string());
    Some(RulesScript {
        source: source_name,
        script: source.to_string(),
        vars: config.env_read,
    })
}

/// Why a config gave no apps.
pub enum ConfigFailure {
    Unreadable(String),
    Invalid(pmx_scripting::ConfigError),
}

impl From<ConfigFailure> for CliError {
    fn from(f: ConfigFailure) -> Self {
        match f {
            ConfigFailure::Unreadable(message) => CliError::Usage(message),
            ConfigFailure::Invalid(error) => {
                CliError::Usage(format!("{error}\nnothing was changed"))
            }
        }
    }
}

/// Sends an `Up` and prints its plan like a diff.
pub fn converge(paths: &Paths, request: UpRequest) -> Result<(), CliError> {
    show_plan(ask(paths, &Request::Up(Box::new(request)))?)
}

/// Prints a `Plan` answer (of `up`, `rollback`, `restart --update-env`).
pub fn show_plan(response: Response) -> Result<(), CliError> {
    match response {
        Response::Plan(report) => {
            print_plan(&report);
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

fn print_plan(report: &PlanReport) {
    for step in &report.steps {
        println(&step.to_string());
    }
    if let Some(swap) = report
        .rules
        .as_ref()
        .filter(|s| !(s.before.is_empty() && s.after.is_empty()))
    {
        let names = |n: &[String]| match n {
            [] => "none".to_string(),
            n => n
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let line = if swap.before.is_empty() {
            format!("rules loaded: {}", names(&swap.after))
        } else {
            format!(
                "rules {} replaced by {}",
                names(&swap.before),
                names(&swap.after)
            )
        };
        crate::output::say(&line);
    }
    match report.revision {
        Some(revision) => crate::output::say(&format!("config revision {revision} applied")),
        None => crate::output::say("dry run: nothing was changed"),
    }
}

pub fn run(paths: &Paths, args: UpArgs) -> Result<(), CliError> {
    let loaded = load_config(&args.file, args.env.as_deref()).map(|(mut config, source)| {
        let apps = std::mem::take(&mut config.apps);
        (apps, rules_of(&args.file, &source, config), source)
    });
    let (mut apps, rules, source) = match loaded {
        Ok(loaded) => loaded,
        Err(ConfigFailure::Invalid(error)) if !args.dry_run => {
            let rejected = RejectedConfig {
                source: args.file.clone(),
                errors: error.to_string(),
            };
            // Best effort: the user's error matters more than the journal's.
            let _ = ask(paths, &Request::RejectConfig(rejected));
            return Err(ConfigFailure::Invalid(error).into());
        }
        Err(other) => return Err(other.into()),
    };
    pick_only(&mut apps, args.only.as_deref(), &args.file)?;
    converge(
        paths,
        UpRequest {
            apps,
            // With --only, the rest of the config is not in the request: nothing to prune.
            prune: args.prune && args.only.is_none(),
            dry_run: args.dry_run,
            source: args.file.clone(),
            hash: fingerprint(&source),
            unchanged: args.unchanged,
            update_env: false,
            // With --only, the rules stay as they are.
            rules: rules.filter(|_| args.only.is_none()),
            renamed: Vec::new(),
        },
    )
}

/// `--only a,b`: keeps those of a config file's `apps`; a name the file does not declare is a
/// usage error.
pub fn pick_only(apps: &mut Vec<AppSpec>, only: Option<&str>, file: &str) -> Result<(), CliError> {
    let Some(only) = only else { return Ok(()) };
    let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
    if let Some(unknown) = wanted.iter().find(|w| !apps.iter().any(|a| a.name == **w)) {
        return Err(CliError::Usage(format!(
            "--only: {file} declares no app `{unknown}`"
        )));
    }
    apps.retain(|a| wanted.contains(&a.name.as_str()));
    Ok(())
}

/// `pmx restart FILE --update-env`: the file's apps with their declared environment and this
/// command's, every one restarted.
pub fn restart_with_env(
    paths: &Paths,
    file: &str,
    env_name: Option<&str>,
    only: Option<&str>,
) -> Result<(), CliError> {
    let (mut apps, source) = load(file, env_name)?;
    pick_only(&mut apps, only, file)?;
    converge(
        paths,
        UpRequest {
            apps,
            prune: false,
            dry_run: false,
            source: file.to_string(),
            hash: fingerprint(&source),
            unchanged: Unchanged::Restart,
            update_env: true,
            rules: None,
            renamed: Vec::new(),
        },
    )
}

/// `pmx ecosystem [FILE]`: the starter config.
pub fn ecosystem(file: &str, force: bool) -> Result<(), CliError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = options.open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::Usage(format!(
            "{file} exists: keep it, or overwrite it with --force"
        )),
        _ => CliError::Failed(format!("cannot write {file}: {e}")),
    })?;
    out.write_all(pmx_scripting::STARTER.as_bytes())
        .map_err(|e| CliError::Failed(format!("cannot write {file}: {e}")))?;
    crate::output::say(&format!("wrote {file}: edit it, then `pmx up {file}`"));
    Ok(())
}

/// `pmx convert FILE`: the Rhai equivalent of an ecosystem file on stdout. If pmx would refuse
/// it, the problems follow on stderr (exit 2): the text is printed anyway, to be fixed.
pub fn convert(file: &str) -> Result<(), CliError> {
    let path = Path::new(file);
    let source = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?;
    let text = pmx_scripting::to_rhai(path, &source).map_err(|e| CliError::Usage(e.to_string()))?;
    crate::output::print(&text);
    match load(file, None) {
        Ok(_) => Ok(()),
        Err(ConfigFailure::Invalid(e)) => Err(CliError::Usage(format!(
            "converted, but `pmx up` would refuse it:\n{e}"
        ))),
        Err(other) => Err(other.into()),
    }
}
