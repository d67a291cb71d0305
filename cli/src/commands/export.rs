//! `pmx export --to systemd|kubernetes|nomad|compose [FILE]`: the apps of a config (or of
//! the daemon) as another engine's files, written into `--out DIR` or printed, and the report
//! of what does not carry over on stderr (exit 3 when there is some).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Response, Targets};
use pmx_export::{Input, Options, Rule, Target};

use super::{ask, processes, unexpected};
use crate::args::ExportArgs;
use crate::error::CliError;
use crate::output::println;

pub fn run(paths: &Paths, args: ExportArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.to).ok_or_else(|| {
        CliError::Usage(format!(
            "--to {}: unknown target (one of {})",
            args.to,
            Target::NAMES.join(", ")
        ))
    })?;
    let json = match args.format.as_str() {
        "hcl" => false,
        "json" if target == Target::Nomad => true,
        "json" => return Err(CliError::Usage("--format json: only for --to nomad".into())),
        other => return Err(CliError::Usage(format!("--format {other}: hcl or json"))),
    };
    let mut input = match &args.file {
        Some(file) => from_config(file, args.env.as_deref())?,
        None => from_daemon(paths)?,
    };
    if let Some(only) = &args.only {
        let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
        if let Some(unknown) = wanted
            .iter()
            .find(|w| !input.apps.iter().any(|a| a.name == **w))
        {
            return Err(CliError::Usage(format!("--only: no app `{unknown}`")));
        }
        input.apps.retain(|a| wanted.contains(&a.name.as_str()));
    }
    if input.apps.is_empty() {
        return Err(CliError::Usage("no apps to export".into()));
    }
    let out_dir = match &args.out {
        Some(dir) => Some(prepare_dir(dir)?),
        None => None,
    };
    let options = Options {
        image: args.image.clone(),
        json,
        out_dir: out_dir.clone(),
        versions: interpreter_versions(&input),
        user: exporting_user(),
    };
    let mut export = pmx_export::export(&input, target, &options);
    match &out_dir {
        Some(dir) => write_files(dir, &export.files)?,
        None => print_files(&export, target),
    }
    let report = &mut export.report.lines;
    for line in report.iter() {
        eprintln!("pmx export: {line}");
    }
    if let Some(file) = &args.report {
        let text: String = report.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(file, text)
            .map_err(|e| CliError::Failed(format!("cannot write the report {file}: {e}")))?;
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(CliError::Incomplete)
    }
}

/// The apps and rules of a config, as `pmx up` reads it.
fn from_config(file: &str, env: Option<&str>) -> Result<Input, CliError> {
    let (config, _) = super::up::load_config(file, env)?;
    Ok(Input::from_config(file, config))
}

/// The apps the daemon runs (their current specs) and its rules.
fn from_daemon(paths: &Paths) -> Result<Input, CliError> {
    // Nothing to export from a daemon that does not run: none is started for it.
    if crate::client::Client::try_connect(paths)?.is_none() {
        return Err(CliError::Usage(
            "no pmx daemon runs: name a config file to export (pmx export --to TARGET FILE)".into(),
        ));
    }
    let all = Targets {
        targets: vec!["all".into()],
        force: false,
    };
    let views = processes(ask(paths, &Request::Describe(all))?)?;
    let mut apps: Vec<pmx_core::spec::AppSpec> = Vec::new();
    for view in views {
        if !apps.iter().any(|a| a.name == view.spec.name) {
            apps.push((*view.spec).clone());
        }
    }
    let rules = match ask(paths, &Request::Rules)? {
        Response::Rules(list) => list.rules,
        other => return Err(unexpected(other)),
    };
    Ok(Input {
        name: "pmx".into(),
        apps,
        rules: rules
            .into_iter()
            .map(|r| Rule {
                name: r.name,
                trigger: r.trigger,
                standard: r.standard,
            })
            .collect(),
    })
}

/// The directory to write into, created if needed, as an absolute path.
fn prepare_dir(dir: &str) -> Result<String, CliError> {
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::canonicalize(dir))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| CliError::Failed(format!("cannot use {dir}: {e}")))
}

/// Each file into `dir`; those with environment values 0600 from their creation.
fn write_files(dir: &str, files: &[pmx_export::File]) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    for file in files {
        let path = Path::new(dir).join(&file.name);
        let mode = if file.secret { 0o600 } else { 0o644 };
        // A file left by an earlier export is replaced, never written through a symlink.
        match std::fs::symlink_metadata(&path) {
            Ok(_) => std::fs::remove_file(&path)
                .map_err(|e| CliError::Failed(format!("cannot replace {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::Failed(format!("{}: {e}", path.display()))),
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut f| f.write_all(file.content.as_bytes()))
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
        println(&path.display().to_string());
    }
    Ok(())
}

/// The files on standard output, as the target's tools read a stream (`kubectl apply -f -`
/// takes YAML documents separated by `---`, `docker compose -f -` one file): Containerfiles
/// and the files holding environment values are left out, and stderr says so.
fn print_files(export: &pmx_export::Export, target: Target) {
    let stream_only = matches!(target, Target::Kubernetes | Target::Compose);
    let mut first = true;
    let (mut secret, mut other) = (Vec::new(), Vec::new());
    for file in &export.files {
        if file.secret {
            secret.push(file.name.clone());
            continue;
        }
        if stream_only && !file.name.ends_with(".yaml") {
            other.push(file.name.clone());
            continue;
        }
        match target {
            Target::Kubernetes if !first => println("---"),
            Target::Kubernetes | Target::Compose => {}
            _ => println(&format!("# ---- {}", file.name)),
        }
        first = false;
        print!("{}", file.content);
    }
    if !secret.is_empty() {
        eprintln!(
            "pmx export: not printed, as they hold environment values: {} (use --out DIR to write them, mode 0600)",
            secret.join(", ")
        );
    }
    if !other.is_empty() {
        eprintln!(
            "pmx export: not printed: {} (use --out DIR to write them)",
            other.join(", ")
        );
    }
}

/// The user running the export, unless root: the units run the apps as that user, as the
/// daemon would.
fn exporting_user() -> Option<String> {
    if rustix::process::geteuid().is_root() {
        return None;
    }
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
}

/// The version of each interpreter the apps use, as this machine runs it (`node` →
/// `v20.11.1`): Containerfiles start from the same.
fn interpreter_versions(input: &Input) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for spec in &input.apps {
        let Some(program) = pmx_export::interpreter_of(spec) else {
            continue;
        };
        let name = program.rsplit('/').next().unwrap_or_default().to_string();
        if versions.contains_key(&name)
            || !["node", "python3", "python", "ruby", "php"].contains(&name.as_str())
        {
            continue;
        }
        let version = std::process::Command::new(&program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.split_whitespace()
                    .find(|w| {
                        w.trim_start_matches('v')
                            .starts_with(|c: char| c.is_ascii_digit())
                    })
                    .map(String::from)
            });
        if let Some(v) = version {
            versions.insert(name, v);
        }
    }
    versions
}
