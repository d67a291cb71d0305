//! `AppSpec`: everything a user can say about an app, with PM2's names and defaults, and its
//! pure validation. Checks that need the file system (does the script exist?) happen in the
//! daemon when it resolves the spec into a command line.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::listen::{HttpUrl, ListenAddr};
use crate::signal::parse_signal;
use crate::state::Readiness;

/// What the user asked for. Journal records embed it, so fields are only ever added, with a
/// default, never renamed or removed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSpec {
    pub name: String,
    /// The script path (absolute once the CLI resolved it) or a shell command line.
    pub script: String,
    pub args: Vec<String>,
    pub interpreter: Interpreter,
    /// PM2's `node_args`; `None` once `--node-args=null` removed them (PM2 then shows none at
    /// all, where an app started without any shows `[]`).
    pub interpreter_args: Option<Vec<String>>,
    /// Working directory of the app; absolute.
    pub cwd: String,
    /// Variables the user set explicitly (`--env K=V`); shown by key in `describe`.
    pub env: BTreeMap<String, String>,
    /// The environment of the CLI that started the app, as PM2 captures it. Shared: it is
    /// the largest part of a spec, and specs are cloned into events, views and the registry.
    pub base_env: Arc<BTreeMap<String, String>>,
    pub instances: u32,
    pub restart: RestartPolicy,
    pub kill_timeout_ms: u64,
    /// Signal number sent to stop the app gracefully.
    pub kill_signal: i32,
    /// PM2's options whose behaviour lands with later issues (cluster, readiness, logs,
    /// policies): parsed, validated and carried now. Flattened: PM2's names at the top.
    #[serde(flatten)]
    pub options: AppOptions,
}

/// PM2's ecosystem options beyond supervision, with PM2's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppOptions {
    /// `fork` or `cluster`.
    pub exec_mode: String,
    pub namespace: String,
    pub wait_ready: bool,
    pub listen_timeout_ms: u64,
    pub shutdown_with_message: bool,
    /// Node: map stack traces through source maps (`--enable-source-maps`); unset: when the
    /// script has a `.map` file beside it, as PM2 detects it.
    pub source_map_support: Option<bool>,
    pub max_memory_restart_bytes: Option<u64>,
    /// How long memory must stay above the limit before the restart (0: at once).
    pub max_memory_restart_for_ms: u64,
    /// A leak guard: restart when memory grows faster than this many bytes per hour…
    pub max_memory_growth_per_hour: Option<u64>,
    /// …over this window.
    pub max_memory_growth_window_ms: u64,
    /// A validated cron expression (5 or 6 fields).
    pub cron_restart: Option<String>,
    /// Paths to watch (`watch: true` is the app's cwd); empty: no watching.
    pub watch: Vec<String>,
    pub ignore_watch: Vec<String>,
    pub watch_delay_ms: u64,
    pub out_file: Option<String>,
    pub error_file: Option<String>,
    pub log_file: Option<String>,
    /// PM2's `pid_file`: each instance's pid is written to this path with `-ID` before the
    /// extension (`echo.pid` → `echo-0.pid`) while it runs.
    pub pid_file: Option<String>,
    pub merge_logs: bool,
    /// Prefix log lines with a timestamp.
    pub time: bool,
    pub log_date_format: Option<String>,
    /// `raw` lines, or one JSON object per line.
    pub log_type: crate::logs::LogType,
    /// Rotation settings of this app's files (unset ones: the daemon's).
    pub log_rotate: crate::logs::RotateOptions,
    pub instance_var: String,
    pub increment_var: Option<String>,
    pub treekill: bool,
    /// Addresses the daemon binds once and passes to every instance (socket activation).
    pub listen: Vec<String>,
    /// An HTTP check of the running app.
    pub health: Option<HealthCheck>,
    /// Apps this one starts after, and what it waits for of each.
    pub depends_on: Vec<Dependency>,
    /// Read the git version of the app's code at each start (PM2's `vizion`).
    pub vizion: bool,
    /// Node apps report garbage collection and HTTP figures too (PM2's `deep_monitoring`).
    pub deep_monitoring: bool,
}

/// One entry of `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub app: String,
    #[serde(default)]
    pub condition: Condition,
}

/// What a dependent waits for: the dependency's processes spawned (`started`), online by its
/// readiness (`ready`), or also answering its health check (`healthy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    #[default]
    Started,
    Ready,
    Healthy,
}

impl AppOptions {
    /// Where instance `id` writes its pid (`pid_file`), if anywhere.
    pub fn pid_file_of(&self, id: u32) -> Option<std::path::PathBuf> {
        let path = std::path::Path::new(self.pid_file.as_deref()?);
        let stem = path.file_stem()?.to_string_lossy();
        let name = match path.extension() {
            Some(ext) => format!("{stem}-{id}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{id}"),
        };
        Some(path.with_file_name(name))
    }
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Healthy => "healthy",
        }
    }
}

/// `health: #{ url, interval, timeout, failures }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    pub url: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Failed checks in a row that restart the app.
    pub failures: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            url: String::new(),
            interval_ms: 5000,
            timeout_ms: 1000,
            failures: 3,
        }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            exec_mode: "fork".into(),
            namespace: "default".into(),
            wait_ready: false,
            listen_timeout_ms: 3000,
            shutdown_with_message: false,
            source_map_support: None,
            max_memory_restart_bytes: None,
            max_memory_restart_for_ms: 0,
            max_memory_growth_per_hour: None,
            max_memory_growth_window_ms: 600_000,
            cron_restart: None,
            watch: Vec::new(),
            ignore_watch: Vec::new(),
            watch_delay_ms: 1000,
            out_file: None,
            error_file: None,
            log_file: None,
            pid_file: None,
            merge_logs: false,
            time: false,
            log_date_format: None,
            log_type: Default::default(),
            log_rotate: Default::default(),
            instance_var: "NODE_APP_INSTANCE".into(),
            increment_var: None,
            treekill: true,
            listen: Vec::new(),
            health: None,
            depends_on: Vec::new(),
            vizion: true,
            deep_monitoring: false,
        }
    }
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            script: String::new(),
            args: Vec::new(),
            interpreter: Interpreter::Auto,
            interpreter_args: Some(Vec::new()),
            cwd: String::from("/"),
            env: BTreeMap::new(),
            base_env: Arc::default(),
            instances: 1,
            restart: RestartPolicy::default(),
            kill_timeout_ms: 1600,
            kill_signal: 2,
            options: AppOptions::default(),
        }
    }
}

impl AppOptions {
    /// `max_memory_restart` as the sampler applies it.
    pub fn memory_policy(&self) -> crate::metrics::MemoryPolicy {
        crate::metrics::MemoryPolicy {
            limit: self.max_memory_restart_bytes,
            sustain_ms: self.max_memory_restart_for_ms,
            growth_per_hour: self.max_memory_growth_per_hour,
            growth_window_ms: self.max_memory_growth_window_ms,
        }
    }
}

impl AppSpec {
    /// The addresses the daemon listens on for the app: `listen`, or in cluster mode without
    /// one, the `PORT` of its environment (PM2's cluster mode shares whatever port it opens).
    pub fn listen_addrs(&self) -> Vec<ListenAddr> {
        let declared: Vec<ListenAddr> = self
            .options
            .listen
            .iter()
            .filter_map(|a| ListenAddr::parse(a).ok())
            .collect();
        // `increment_var: PORT` gives each instance a port of its own: nothing to share.
        let own_ports = self.options.increment_var.as_deref() == Some("PORT");
        if !declared.is_empty() || self.options.exec_mode != "cluster" || own_ports {
            return declared;
        }
        let port = self.env.get("PORT").or_else(|| self.base_env.get("PORT"));
        port.and_then(|p| ListenAddr::parse(p).ok())
            .filter(|a| a.port().is_some())
            .into_iter()
            .collect()
    }

    /// Whether instances run by `command` (the resolved command line) are PM2's cluster
    /// mode: `exec_mode: cluster` and a Node program (others run as plain processes).
    pub fn cluster_mode(&self, command: &[String]) -> bool {
        self.options.exec_mode == "cluster" && command.first().is_some_and(|p| is_node(p))
    }

    /// When an instance counts as online: when it says so (`wait_ready`); an app behind a
    /// shared socket when it says so or after `listen_timeout`; any other at spawn.
    pub fn readiness(&self) -> Readiness {
        let timeout_ms = self.options.listen_timeout_ms;
        if self.options.wait_ready {
            Readiness::Reported { timeout_ms }
        } else if !self.listen_addrs().is_empty() {
            Readiness::ReportedOrAfter { timeout_ms }
        } else {
            Readiness::AtSpawn
        }
    }

    /// The environment the app runs with: the captured one, overridden by the explicit one.
    pub fn run_env(&self) -> BTreeMap<String, String> {
        let mut env = (*self.base_env).clone();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// What differs from `other`, in words (`instances 2 → 3`, `env.LOG_LEVEL`,
    /// `restart.max_restarts 16 → 5`). The captured environment is not compared: like PM2,
    /// an app keeps the one it started with unless asked to update it.
    pub fn differences(&self, other: &AppSpec) -> Vec<String> {
        let (Ok(mine), Ok(theirs)) = (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return vec!["spec".into()];
        };
        let mut out = Vec::new();
        diff_values("", &mine, &theirs, &mut out);
        out
    }

    /// The variables whose value differs between the environments the two specs run with
    /// (added, removed or changed), as `env.NAME`; values are never shown.
    pub fn env_differences(&self, other: &AppSpec) -> Vec<String> {
        const SHOWN: usize = 8;
        let (mine, theirs) = (self.run_env(), other.run_env());
        let keys: std::collections::BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
        let changed: Vec<String> = keys
            .into_iter()
            .filter(|k| mine.get(*k) != theirs.get(*k))
            .map(|k| format!("env.{k}"))
            .collect();
        if changed.len() <= SHOWN {
            return changed;
        }
        let more = changed.len() - SHOWN;
        let mut shown: Vec<String> = changed.into_iter().take(SHOWN).collect();
        shown.push(format!("{more} more variables"));
        shown
    }

    /// Leaves the environment's keys, not its values (secrets): what `history` shows.
    pub fn redact_env(&mut self) {
        self.base_env = Arc::default();
        for value in self.env.values_mut() {
            *value = REDACTED.to_string();
        }
    }
}

/// Compares two JSON objects field by field (nested objects by path); env values are
/// named by key only, never shown.
fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                if path.is_empty() && key == "base_env" {
                    continue;
                }
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (x, y) = (a.get(key.as_str()), b.get(key.as_str()));
                match (x, y) {
                    (Some(x), Some(y)) if x == y => {}
                    _ if path == "env" => out.push(sub),
                    // One option to the user, however it is stored.
                    (Some(x), Some(y)) if sub != "interpreter" => diff_values(&sub, x, y, out),
                    (x, y) => out.push(change(&sub, x, y)),
                }
            }
        }
        (a, b) if a != b => out.push(change(path, Some(a), Some(b))),
        _ => {}
    }
}

/// How a value is written in the user's words.
#[derive(Clone, Copy)]
enum Unit {
    Plain,
    Bytes,
    Millis,
    Signal,
}

/// One changed option as the user writes it: PM2's name (`max_memory_restart`, not
/// `max_memory_restart_bytes`; `max_restarts`, not `restart.max_restarts`) and its value
/// (`256MB`, `5000ms`, `SIGTERM`, `node`).
fn change(path: &str, a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> String {
    let path = path.strip_prefix("restart.").unwrap_or(path);
    let (name, unit) = if let Some(base) = path.strip_suffix("_bytes") {
        (base, Unit::Bytes)
    } else if let Some(base) = path.strip_suffix("_ms") {
        (base, Unit::Millis)
    } else if path == "interpreter_args" {
        ("node_args", Unit::Plain)
    } else if path == "kill_signal" {
        (path, Unit::Signal)
    } else {
        (path, Unit::Plain)
    };
    format!("{name} {} → {}", shown(a, unit), shown(b, unit))
}

fn shown(v: Option<&serde_json::Value>, unit: Unit) -> String {
    use serde_json::Value;
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return "unset".into();
    };
    // The interpreter, as `--interpreter` takes it.
    if let Ok(interpreter) = serde_json::from_value::<Interpreter>(v.clone()) {
        return match interpreter {
            Interpreter::Auto => "auto".into(),
            Interpreter::None => "none".into(),
            Interpreter::Program(p) => p,
        };
    }
    match (v, unit, v.as_u64()) {
        (_, Unit::Bytes, Some(n)) => crate::units::format_bytes(n),
        (_, Unit::Millis, Some(n)) => format!("{n}ms"),
        (_, Unit::Signal, Some(n)) => crate::signal::signal_name(n as i32).into_owned(),
        (Value::String(s), _, _) => s.clone(),
        (other, _, _) => other.to_string(),
    }
}

/// What `redact_env` puts in place of a value.
pub const REDACTED: &str = "(hidden: pmx env)";

/// Environment values can hold secrets: `Debug` shows keys only.
impl fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSpec")
            .field("name", &self.name)
            .field("script", &self.script)
            .field("args", &self.args)
            .field("interpreter", &self.interpreter)
            .field("interpreter_args", &self.interpreter_args)
            .field("cwd", &self.cwd)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("base_env_keys", &self.base_env.len())
            .field("instances", &self.instances)
            .field("restart", &self.restart)
            .field("kill_timeout_ms", &self.kill_timeout_ms)
            .field("kill_signal", &self.kill_signal)
            .field("options", &self.options)
            .finish()
    }
}

/// How the script is run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "program")]
pub enum Interpreter {
    /// By extension (`.js` → node, `.py` → python3, ...), else executed directly.
    #[default]
    Auto,
    /// `--interpreter none`: the file is executed directly.
    None,
    /// An explicit program (`node`, `/usr/bin/python3.11`).
    Program(String),
}

impl Interpreter {
    /// `--interpreter X` as typed: `none` means execute directly.
    pub fn from_flag(value: &str) -> Self {
        match value {
            "none" => Interpreter::None,
            other => Interpreter::Program(other.to_string()),
        }
    }

    /// The interpreter PM2 users expect for a script's extension.
    pub fn for_extension(script: &str) -> Option<&'static str> {
        let ext = script.rsplit_once('.')?.1;
        Some(match ext {
            "js" | "mjs" | "cjs" => "node",
            "py" => "python3",
            "sh" => "bash",
            "rb" => "ruby",
            "php" => "php",
            "pl" => "perl",
            _ => return None,
        })
    }
}

/// When and how an instance is restarted after it exits on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    pub autorestart: bool,
    /// Unstable restarts in a row allowed before the instance goes `errored`.
    pub max_restarts: u32,
    /// A run shorter than this is unstable.
    pub min_uptime_ms: u64,
    pub restart_delay_ms: u64,
    /// Starting delay of the exponential backoff; `None` disables it.
    pub exp_backoff_restart_delay_ms: Option<u64>,
    /// Exit codes that mean "done": no restart.
    pub stop_exit_codes: Vec<i32>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: None,
            stop_exit_codes: Vec::new(),
        }
    }
}

/// Why a spec is refused; the message is what the user reads.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("app name must not be empty")]
    EmptyName,
    #[error("invalid app name `{0}`: use letters, digits, `-`, `_`, `.`, `@`, `:` (not `all`)")]
    BadName(String),
    #[error("script must not be empty")]
    EmptyScript,
    #[error("instances must be at least 1 (got {0})")]
    NoInstances(u32),
    #[error("instances must be at most {max} (got {got})")]
    TooManyInstances { got: u32, max: u32 },
    #[error("unknown kill signal {0}")]
    BadSignal(i32),
    #[error("cwd must be an absolute path (got `{0}`)")]
    RelativeCwd(String),
    #[error("invalid environment variable name `{0}`")]
    BadEnvKey(String),
    #[error("{0}")]
    BadListen(String),
    #[error("{0}")]
    BadHealth(String),
}

/// Upper bound on instances of one app, to refuse typos like `-i 10000`.
pub const MAX_INSTANCES: u32 = 256;

impl AppSpec {
    /// Checks what can be checked without the file system.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name(&self.name)?;
        if self.script.trim().is_empty() {
            return Err(SpecError::EmptyScript);
        }
        if self.instances == 0 {
            return Err(SpecError::NoInstances(0));
        }
        if self.instances > MAX_INSTANCES {
            return Err(SpecError::TooManyInstances {
                got: self.instances,
                max: MAX_INSTANCES,
            });
        }
        if parse_signal(&self.kill_signal.to_string()).is_none() {
            return Err(SpecError::BadSignal(self.kill_signal));
        }
        if !self.cwd.starts_with('/') {
            return Err(SpecError::RelativeCwd(self.cwd.clone()));
        }
        if let Some(key) = self
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(SpecError::BadEnvKey(key.clone()));
        }
        for addr in &self.options.listen {
            ListenAddr::parse(addr).map_err(SpecError::BadListen)?;
        }
        if let Some(health) = &self.options.health {
            HttpUrl::parse(&health.url).map_err(SpecError::BadHealth)?;
            if health.failures == 0 || health.interval_ms == 0 || health.timeout_ms == 0 {
                return Err(SpecError::BadHealth(
                    "health: interval, timeout and failures must be above 0".into(),
                ));
            }
        }
        Ok(())
    }

    /// A script with whitespace that is not a file runs through `sh -c`, as in PM2.
    pub fn is_shell_command(&self) -> bool {
        self.script.trim().contains(char::is_whitespace)
    }

    /// The command line of a shell-command script: `sh -c SCRIPT sh ARGS…`. `"$@"` passes
    /// the app's args through without re-splitting them; only when there are some, since it
    /// breaks a compound command (`while ...; done "$@"`).
    pub fn shell_argv(&self) -> Vec<String> {
        let script = self.script.trim();
        let command = if self.args.is_empty() {
            script.to_string()
        } else {
            format!("{script} \"$@\"")
        };
        let mut argv = vec!["/bin/sh".into(), "-c".into(), command, "sh".into()];
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// Names are targets on the command line: they must not look like ids or `all`.
pub fn validate_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(SpecError::EmptyName);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.@:".contains(c);
    // A name of digits is allowed, as PM2 allows it: a target is an id first, then a name.
    if name == "all" || name.len() > 128 || !name.chars().all(allowed) {
        return Err(SpecError::BadName(name.to_string()));
    }
    Ok(())
}

/// Whether `program` (a command line's first word) is Node, whose instances can run in
/// cluster mode: `node`, `nodejs`, or a path to either (`/usr/bin/node`, `node20`).
pub fn is_node(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    base.strip_prefix("nodejs")
        .or_else(|| base.strip_prefix("node"))
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The default name PM2 gives: the script's file name without its extension.
pub fn default_name(script: &str) -> String {
    let first = script.split_whitespace().next().unwrap_or(script);
    let base = first.rsplit('/').next().unwrap_or(first);
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if validate_name(&cleaned).is_ok() {
        cleaned
    } else {
        format!("app-{cleaned}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            name: "api".into(),
            script: "/srv/app.js".into(),
            ..AppSpec::default()
        }
    }

    #[test]
    fn pid_files_take_the_instance_id_before_the_extension() {
        let mut o = AppOptions::default();
        assert_eq!(o.pid_file_of(0), None);
        o.pid_file = Some("/run/app/echo.pid".into());
        assert_eq!(o.pid_file_of(3), Some("/run/app/echo-3.pid".into()));
        o.pid_file = Some("/run/app/echo".into());
        assert_eq!(o.pid_file_of(0), Some("/run/app/echo-0".into()));
    }

    /// PM2's cluster mode shares the port of `PORT`, unless `increment_var: PORT` gives each
    /// instance its own; a declared `listen` is always shared.
    #[test]
    fn a_cluster_app_shares_its_port_unless_each_instance_has_its_own() {
        let mut s = spec();
        s.env.insert("PORT".into(), "3000".into());
        assert!(s.listen_addrs().is_empty(), "fork mode");
        s.options.exec_mode = "cluster".into();
        assert_eq!(s.listen_addrs(), vec![ListenAddr::parse("3000").unwrap()]);
        s.options.increment_var = Some("PORT".into());
        assert!(s.listen_addrs().is_empty());
        s.options.listen = vec!["127.0.0.1:4000".into()];
        assert_eq!(
            s.listen_addrs(),
            vec![ListenAddr::parse("127.0.0.1:4000").unwrap()]
        );
    }

    #[test]
    fn node_is_known_by_its_program() {
        for yes in [
            "node",
            "/usr/bin/node",
            "nodejs",
            "node20",
            "/opt/node-22/bin/node",
        ] {
            assert!(is_node(yes), "{yes}");
        }
        for no in [
            "python3",
            "/usr/bin/nodemon",
            "bun",
            "",
            "/bin/sh",
            "node-gyp",
        ] {
            assert!(!is_node(no), "{no}");
        }
    }

    #[test]
    fn defaults_are_pm2s() {
        let s = AppSpec::default();
        assert!(s.restart.autorestart);
        assert_eq!(s.restart.max_restarts, 16);
        assert_eq!(s.restart.min_uptime_ms, 1000);
        assert_eq!(s.restart.restart_delay_ms, 0);
        assert_eq!(s.kill_timeout_ms, 1600);
        assert_eq!(s.kill_signal, 2);
        assert_eq!(s.instances, 1);
    }

    #[test]
    fn validation_refuses_bad_specs() {
        assert_eq!(spec().validate(), Ok(()));
        let bad = [
            AppSpec {
                name: "".into(),
                ..spec()
            },
            AppSpec {
                name: "all".into(),
                ..spec()
            },
            AppSpec {
                name: "a b".into(),
                ..spec()
            },
            AppSpec {
                script: " ".into(),
                ..spec()
            },
            AppSpec {
                instances: 0,
                ..spec()
            },
            AppSpec {
                instances: 100_000,
                ..spec()
            },
            AppSpec {
                kill_signal: 77,
                ..spec()
            },
            AppSpec {
                cwd: "rel".into(),
                ..spec()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn interpreter_by_extension() {
        assert_eq!(Interpreter::for_extension("a/app.js"), Some("node"));
        assert_eq!(Interpreter::for_extension("w.mjs"), Some("node"));
        assert_eq!(Interpreter::for_extension("w.py"), Some("python3"));
        assert_eq!(Interpreter::for_extension("w.sh"), Some("bash"));
        assert_eq!(Interpreter::for_extension("w.rb"), Some("ruby"));
        assert_eq!(Interpreter::for_extension("w.php"), Some("php"));
        assert_eq!(Interpreter::for_extension("w.pl"), Some("perl"));
        assert_eq!(Interpreter::for_extension("./server"), None);
    }

    #[test]
    fn default_names() {
        assert_eq!(default_name("/srv/app.js"), "app");
        assert_eq!(default_name("worker.py"), "worker");
        assert_eq!(default_name("python3 -m http.server"), "python3");
        assert_eq!(default_name("./server"), "server");
        assert_eq!(
            default_name("/x/123.sh"),
            "123",
            "digits are a name, as in PM2"
        );
    }

    #[test]
    fn old_records_without_new_fields_still_load() {
        let s: AppSpec = serde_json::from_str(r#"{"name":"api","script":"/a.js"}"#).unwrap();
        assert_eq!(s.restart.max_restarts, 16);
    }
}
