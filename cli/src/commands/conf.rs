//! `set`, `multiset`, `unset`, `get`: PM2's module configuration in `module_conf.json`. A
//! registered app whose values changed is restarted, so its processes have them.

use pmx_core::conf::{LOGROTATE, ModuleConf, split_key};
use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Targets};

use super::ask;
use crate::error::CliError;

fn load(paths: &Paths) -> Result<ModuleConf, CliError> {
    pmx_core::private::prepare_home(paths.home()).map_err(|e| CliError::Usage(e.to_string()))?;
    ModuleConf::load(paths).map_err(|e| {
        CliError::Failed(format!(
            "cannot read {}: {e}",
            paths.module_conf().display()
        ))
    })
}

fn save(paths: &Paths, conf: &ModuleConf) -> Result<(), CliError> {
    conf.save(paths).map_err(|e| {
        CliError::Failed(format!(
            "cannot write {}: {e}",
            paths.module_conf().display()
        ))
    })
}

/// `pmx set KEY VALUE` (each pair checked before anything is written).
pub fn set(paths: &Paths, pairs: &[(String, String)]) -> Result<(), CliError> {
    let mut conf = load(paths)?;
    for (key, value) in pairs {
        conf.set(key, value).map_err(CliError::Usage)?;
    }
    save(paths, &conf)?;
    for (key, value) in pairs {
        crate::output::say(&format!("{key} = {value}"));
    }
    restart_apps(paths, pairs.iter().map(|(k, _)| k.as_str()))
}

/// `pmx multiset "KEY VALUE KEY VALUE"`.
pub fn multiset(paths: &Paths, pairs: &str) -> Result<(), CliError> {
    let words: Vec<&str> = pairs.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(CliError::Usage(format!(
            "multiset takes \"KEY VALUE KEY VALUE ...\", found {pairs:?}"
        )));
    }
    let pairs: Vec<(String, String)> = words
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect();
    set(paths, &pairs)
}

/// `pmx unset KEY`: nothing to remove is no error (PM2's habit, `unset all` included).
pub fn unset(paths: &Paths, key: &str) -> Result<(), CliError> {
    let mut conf = load(paths)?;
    let removed = conf.unset(key);
    save(paths, &conf)?;
    if !removed {
        crate::output::say(&format!("{key} was not set"));
        return Ok(());
    }
    crate::output::say(&format!("{key} unset"));
    restart_apps(paths, std::iter::once(key))
}

/// `pmx get [KEY]`: the value, or everything, as JSON.
pub fn get(paths: &Paths, key: Option<&str>) -> Result<(), CliError> {
    let conf = load(paths)?;
    let value = match key {
        None => serde_json::Value::Object(conf.0),
        Some(key) => conf
            .get(key)
            .cloned()
            .ok_or_else(|| CliError::Failed(format!("{key} is not set")))?,
    };
    let text = match &value {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    println!("{text}");
    Ok(())
}

/// Restarts the registered apps named by `keys` (`APP.KEY` or `APP`), so their processes
/// get the new values; other keys restart nothing.
fn restart_apps<'a>(paths: &Paths, keys: impl Iterator<Item = &'a str>) -> Result<(), CliError> {
    let mut named: Vec<&str> = keys.map(|k| split_key(k).0.unwrap_or(k)).collect();
    named.dedup();
    // Only an app's own name: never `all`, an id or a namespace.
    let registered = super::processes(ask(paths, &Request::List)?)?;
    let apps: Vec<String> = named
        .into_iter()
        .filter(|n| *n != LOGROTATE && registered.iter().any(|p| p.name == *n))
        .map(String::from)
        .collect();
    if apps.is_empty() {
        return Ok(());
    }
    let request = Request::Restart(Targets {
        targets: apps,
        force: false,
    });
    let restarted = super::processes(ask(paths, &request)?)?;
    crate::render::action("restart", "", &restarted);
    Ok(())
}
