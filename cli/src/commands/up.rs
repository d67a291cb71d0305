//! `pmx up FILE`: evaluate a config script (here, in the sandbox), send the apps it declares,
//! print the plan like a diff. A config that fails changes nothing and is journaled.

use std::path::Path;
use std::sync::Arc;

use pmx_core::paths::Paths;
use pmx_core::protocol::{RejectedConfig, Request, Response, UpRequest};
use pmx_scripting::{EvalOptions, evaluate};

use super::ask;
use super::start::captured_env;
use crate::CliError;
use crate::args::UpArgs;
use crate::output::println;

/// FNV-1a: a stable fingerprint of the config's text for the journal.
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

/// Whether `pmx start FILE` means a config file rather than a script to run.
pub fn is_config(script: &str) -> bool {
    script.ends_with(".rhai")
}

pub fn run(paths: &Paths, args: UpArgs) -> Result<(), CliError> {
    let file = Path::new(&args.file);
    let source = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file)))?;
    let opts = EvalOptions {
        env_name: args.env.as_deref(),
        vars: Arc::new(captured_env()),
    };
    let mut apps = match evaluate(file, &source, &opts) {
        Ok(apps) => apps,
        Err(error) => {
            if !args.dry_run {
                let rejected = RejectedConfig {
                    source: args.file.clone(),
                    errors: error.to_string(),
                };
                // Best effort: the user's error matters more than the journal's.
                let _ = ask(paths, &Request::RejectConfig(rejected));
            }
            return Err(CliError::Usage(format!("{error}\nnothing was changed")));
        }
    };
    if let Some(only) = &args.only {
        let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
        if let Some(unknown) = wanted.iter().find(|w| !apps.iter().any(|a| a.name == **w)) {
            return Err(CliError::Usage(format!(
                "--only: {} declares no app `{unknown}`",
                args.file
            )));
        }
        apps.retain(|a| wanted.contains(&a.name.as_str()));
    }
    let request = UpRequest {
        apps,
        // With --only, the rest of the config is not in the request: nothing to prune.
        prune: args.prune && args.only.is_none(),
        dry_run: args.dry_run,
        source: args.file.clone(),
        hash: fingerprint(&source),
    };
    let report = match ask(paths, &Request::Up(Box::new(request)))? {
        Response::Plan(report) => report,
        other => {
            return Err(CliError::Failed(format!(
                "unexpected answer from the daemon: {other:?}"
            )));
        }
    };
    for step in &report.steps {
        println(&step.to_string());
    }
    match report.revision {
        Some(revision) => println(&format!("config revision {revision} applied")),
        None => println("dry run: nothing was changed"),
    }
    Ok(())
}
