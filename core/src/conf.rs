//! `pmx set`/`get`/`unset` (PM2's module configuration): values by module or app, kept in
//! `$PMX_HOME/module_conf.json` as PM2 keeps them. `APP.KEY` values reach app APP's
//! processes as environment variables, as under PM2; `pm2-logrotate:KEY` values are the
//! log rotation of every app that does not set its own (pm2-logrotate's keys, pmx's rotation).

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde_json::{Map, Value};

use crate::logs::RotateOptions;
use crate::paths::Paths;
use crate::units::{parse_size_bytes, six_field_cron};

/// The section whose keys are pm2-logrotate's settings.
pub const LOGROTATE: &str = "pm2-logrotate";

/// The file is the user's own, but read by the daemon at every spawn: bounded.
const FILE_CAP: u64 = 1024 * 1024;

/// The whole configuration: top-level keys, and sections (`{"echo": {"config_var": "x"}}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleConf(pub Map<String, Value>);

/// `MODULE.KEY` or `MODULE:KEY` → (Some(MODULE), KEY); a plain `KEY` → (None, KEY).
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.find([':', '.']) {
        Some(at) if at > 0 && at + 1 < key.len() => (Some(&key[..at]), &key[at + 1..]),
        _ => (None, key),
    }
}

impl ModuleConf {
    /// The file's configuration; none when there is no file.
    pub fn load(paths: &Paths) -> io::Result<Self> {
        let file = crate::private::options()
            .read(true)
            .open(paths.module_conf());
        let file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e),
        };
        let mut text = Vec::new();
        file.take(FILE_CAP).read_to_end(&mut text)?;
        match serde_json::from_slice(&text) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(io::Error::other("expected a JSON object")),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// Writes the file (0600, never through a symlink).
    pub fn save(&self, paths: &Paths) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(&self.0).map_err(io::Error::other)?;
        crate::private::replace(&paths.module_conf(), &text)
    }

    /// Sets `key` (`MODULE.KEY`, `MODULE:KEY` or `KEY`); pm2-logrotate's values are checked.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match split_key(key) {
            (Some(module), name) => {
                if module == LOGROTATE {
                    rotation_value(name, value)?;
                }
                let section = self
                    .0
                    .entry(module.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !section.is_object() {
                    *section = Value::Object(Map::new());
                }
                if let Value::Object(section) = section {
                    section.insert(name.to_string(), Value::String(value.to_string()));
                }
            }
            (None, name) => {
                self.0
                    .insert(name.to_string(), Value::String(value.to_string()));
            }
        }
        Ok(())
    }

    /// Removes `key`: one value of a section, a whole section, or a top-level key. False when
    /// there was nothing to remove.
    pub fn unset(&mut self, key: &str) -> bool {
        if self.0.remove(key).is_some() {
            return true;
        }
        match split_key(key) {
            (Some(module), name) => match self.0.get_mut(module) {
                Some(Value::Object(section)) => section.remove(name).is_some(),
                _ => false,
            },
            (None, _) => false,
        }
    }

    /// The value of `key`, or of the whole section.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).or_else(|| match split_key(key) {
            (Some(module), name) => self.0.get(module)?.get(name),
            (None, _) => None,
        })
    }

    /// The variables app `app`'s processes get: each value, and all of them as one JSON
    /// object under the app's name (PM2 gives its apps their module configuration so).
    pub fn env_of(&self, app: &str) -> BTreeMap<String, String> {
        let Some(Value::Object(section)) = self.0.get(app) else {
            return BTreeMap::new();
        };
        let whole = (app.to_string(), Value::Object(section.clone()).to_string());
        section
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k.clone(), s.clone()),
                other => (k.clone(), other.to_string()),
            })
            .chain(std::iter::once(whole))
            .collect()
    }

    /// pm2-logrotate's settings, as rotation options (a value that does not read is skipped:
    /// `set` refuses those).
    pub fn rotation(&self) -> RotateOptions {
        let mut options = RotateOptions::default();
        let Some(Value::Object(section)) = self.0.get(LOGROTATE) else {
            return options;
        };
        for (key, value) in section {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Ok(Some(set)) = rotation_value(key, &text) {
                set(&mut options);
            }
        }
        options
    }
}

type Setter = Box<dyn FnOnce(&mut RotateOptions)>;

/// One pm2-logrotate setting read: how it sets the rotation (`None`: a pm2-logrotate key pmx
/// has no use for, such as `workerInterval`), or why the value is wrong.
fn rotation_value(key: &str, value: &str) -> Result<Option<Setter>, String> {
    let bad = |what: &str| format!("{LOGROTATE}:{key}: expected {what}, found {value:?}");
    Ok(Some(match key {
        "max_size" => {
            let bytes = parse_size_bytes(value).map_err(|_| bad("a size (10M, 1G)"))?;
            Box::new(move |o| o.max_size_bytes = Some(bytes))
        }
        "retain" => {
            let n = match value {
                "all" => u32::MAX,
                n => n.parse().map_err(|_| bad("a number of files or `all`"))?,
            };
            Box::new(move |o| o.retain = Some(n))
        }
        "compress" => {
            let on = value.parse().map_err(|_| bad("true or false"))?;
            Box::new(move |o| o.compress = Some(on))
        }
        "dateFormat" => {
            let format = value.to_string();
            Box::new(move |o| o.date_format = Some(format))
        }
        "rotateInterval" => {
            six_field_cron(value).map_err(|_| bad("a cron expression"))?;
            let cron = value.to_string();
            Box::new(move |o| o.interval = Some(cron))
        }
        "workerInterval" | "rotateModule" | "TZ" => return Ok(None),
        other => {
            return Err(format!(
                "{LOGROTATE}:{other}: unknown setting (pmx reads max_size, retain, compress, \
                 dateFormat, rotateInterval)"
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_on_the_first_dot_or_colon() {
        assert_eq!(split_key("echo.config_var"), (Some("echo"), "config_var"));
        assert_eq!(
            split_key("pm2-logrotate:max_size"),
            (Some(LOGROTATE), "max_size")
        );
        assert_eq!(split_key("key1"), (None, "key1"));
        assert_eq!(split_key(".x"), (None, ".x"));
    }

    #[test]
    fn set_get_unset_by_section_and_key() {
        let mut conf = ModuleConf::default();
        conf.set("echo.config_var", "false").unwrap();
        conf.set("echo.probes", "true").unwrap();
        conf.set("key1", "val1").unwrap();
        assert_eq!(conf.get("echo.config_var"), Some(&Value::from("false")));
        assert_eq!(conf.get("key1"), Some(&Value::from("val1")));
        let env = conf.env_of("echo");
        assert_eq!(env.get("probes").map(String::as_str), Some("true"));
        assert_eq!(
            env.get("echo").map(String::as_str),
            Some(r#"{"config_var":"false","probes":"true"}"#),
            "the whole section under the app's name, as PM2 gives it"
        );
        assert!(conf.unset("echo.probes"));
        assert!(!conf.unset("echo.probes"));
        assert!(conf.unset("echo"), "a whole section");
        assert!(conf.env_of("echo").is_empty());
        assert!(conf.unset("key1"));
        assert!(conf.0.is_empty());
    }

    #[test]
    fn logrotate_settings_are_checked_and_become_the_rotation() {
        let mut conf = ModuleConf::default();
        conf.set("pm2-logrotate:max_size", "10M").unwrap();
        conf.set("pm2-logrotate:retain", "5").unwrap();
        conf.set("pm2-logrotate:compress", "true").unwrap();
        conf.set("pm2-logrotate:rotateInterval", "0 0 * * *")
            .unwrap();
        conf.set("pm2-logrotate:workerInterval", "30").unwrap();
        let r = conf.rotation();
        assert_eq!(r.max_size_bytes, Some(10 * 1024 * 1024));
        assert_eq!(r.retain, Some(5));
        assert_eq!(r.compress, Some(true));
        assert_eq!(r.interval.as_deref(), Some("0 0 * * *"));
        for (key, value) in [("max_size", "huge"), ("retain", "-1"), ("colour", "red")] {
            let err = conf
                .set(&format!("pm2-logrotate:{key}"), value)
                .unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }
}
