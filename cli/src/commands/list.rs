//! `list`, `jlist`, `describe`, `env`, `rules`.

use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Response, Targets};

use super::{ask, processes};
use crate::args::TargetArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::{print_bytes, println};
use crate::render;

pub fn list(paths: &Paths) -> Result<(), CliError> {
    let all = processes(ask(paths, &Request::List)?)?;
    println(&render::table(&all, render::now_ms()));
    Ok(())
}

pub fn rules(paths: &Paths, json: bool) -> Result<(), CliError> {
    match ask(paths, &Request::Rules)? {
        Response::Rules(list) if json => {
            println(&serde_json::to_string(&list).unwrap_or_default());
            Ok(())
        }
        Response::Rules(list) => {
            println(&render::rules(&list, render::now_ms()));
            Ok(())
        }
        other => Err(super::unexpected(other)),
    }
}

pub fn jlist(paths: &Paths) -> Result<(), CliError> {
    let mut document = Client::connect(paths)?.request_document(&Request::Jlist)?;
    document.push(b'\n');
    print_bytes(&document);
    Ok(())
}

pub fn describe(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    let picked = processes(ask(
        paths,
        &Request::Describe(Targets {
            targets: t.targets,
            force: false,
        }),
    )?)?;
    let now = render::now_ms();
    for p in &picked {
        println(&render::describe(p, now));
    }
    Ok(())
}

/// `pmx env TARGET`: `KEY=value` lines of each picked app, sorted by key.
pub fn env(paths: &Paths, t: TargetArgs) -> Result<(), CliError> {
    let targets = Targets {
        targets: t.targets,
        force: false,
    };
    let apps = match ask(paths, &Request::Env(targets.clone()))? {
        Response::Env(list) => list.apps,
        other => return Err(super::unexpected(other)),
    };
    let several = apps.len() > 1;
    // The instances of these apps only (what pmx added is per run).
    let running = processes(ask(paths, &Request::Describe(targets))?)?;
    for app in apps {
        if several {
            println(&format!("# {} (ids {:?})", app.name, app.ids));
        }
        for (key, value) in app.env {
            println(&format!("{key}={value}"));
        }
        // What pmx adds for each running instance (its id, the Node preload, sockets...).
        for p in running
            .iter()
            .filter(|p| p.name == app.name && p.pid.is_some())
        {
            println(&format!(
                "# set by pmx in instance {} (pid {}):",
                p.id,
                p.pid.unwrap_or(0)
            ));
            for (key, value) in p.injected.iter() {
                println(&format!("{key}={value}"));
            }
        }
    }
    Ok(())
}
