//! One declared app (a Rhai map) into an `AppSpec`: PM2's option names and defaults, every
//! problem collected (not only the first), unknown names answered with a did-you-mean.

use std::collections::BTreeMap;
use std::path::Path;

use pmx_core::logs::{LogType, RotateOptions};
use pmx_core::signal::parse_signal;
use pmx_core::spec::{AppSpec, Interpreter, MAX_INSTANCES, default_name};
use pmx_core::units::{parse_duration_ms, parse_rate_per_hour, parse_size_bytes, validate_cron};
use rhai::{Dynamic, Map};

/// Every option an app may have. `env_<name>` is matched separately.
pub const OPTIONS: &[&str] = &[
    "name",
    "append_env_to_name",
    "script",
    "args",
    "interpreter",
    "interpreter_args",
    "node_args",
    "cwd",
    "instances",
    "exec_mode",
    "env",
    "env_file",
    "autorestart",
    "max_restarts",
    "min_uptime",
    "restart_delay",
    "exp_backoff_restart_delay",
    "stop_exit_codes",
    "kill_timeout",
    "kill_signal",
    "listen_timeout",
    "wait_ready",
    "shutdown_with_message",
    "source_map_support",
    "disable_source_map_support",
    "max_memory_restart",
    "cron_restart",
    "watch",
    "ignore_watch",
    "watch_delay",
    "out_file",
    "error_file",
    "log_file",
    "pid_file",
    "merge_logs",
    "combine_logs",
    "time",
    "log_date_format",
    "log_type",
    "log_rotate",
    "namespace",
    "instance_var",
    "increment_var",
    "treekill",
    "vizion",
    "deep_monitoring",
    "listen",
    "health",
    "depends_on",
];

/// PM2's other names for options (its schema's aliases): accepted, never suggested.
const ALIASES: &[&str] = &[
    "cmd",
    "exec",
    "exec_interpreter",
    "interpreterArgs",
    "cron",
    "out",
    "output",
    "out_log",
    "error",
    "err",
    "err_file",
    "err_log",
    "log",
];

/// What decoding needs from outside the script.
pub struct DecodeContext<'a> {
    /// The config file's directory: relative paths start there.
    pub dir: &'a Path,
    /// `--env NAME`: `env_NAME` is merged over `env`.
    pub env_name: Option<&'a str>,
    /// The environment the apps are started with (the CLI's, as PM2 captures it).
    pub base_env: std::sync::Arc<BTreeMap<String, String>>,
}

/// A problem with one app: its message, and the option it is about (the caller finds where
/// that option is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub message: String,
    /// The option is not one pmx knows (PM2 ignores those in its ecosystem files).
    pub unknown: bool,
}

impl Problem {
    fn about(key: &str, message: String) -> Self {
        Problem {
            key: Some(key.to_string()),
            message,
            unknown: false,
        }
    }

    fn general(message: String) -> Self {
        Problem {
            key: None,
            message,
            unknown: false,
        }
    }
}

pub type Problems = Vec<Problem>;

fn type_name(v: &Dynamic) -> String {
    if v.is_string() {
        format!("{:?}", v.to_string())
    } else if v.is_unit() {
        "()".into()
    } else {
        format!("{} {v}", v.type_name())
    }
}

fn expected(key: &str, what: &str, v: &Dynamic) -> String {
    format!("{key}: expected {what}, found {}", type_name(v))
}

fn string(key: &str, v: &Dynamic) -> Result<String, String> {
    v.clone()
        .into_string()
        .map_err(|_| expected(key, "a string", v))
}

fn boolean(key: &str, v: &Dynamic) -> Result<bool, String> {
    v.as_bool().map_err(|_| expected(key, "true or false", v))
}

/// An integer, or a string of one (`"max_restarts": "50"`, as PM2 reads ecosystem files).
fn integer(key: &str, v: &Dynamic) -> Result<i64, String> {
    v.as_int()
        .ok()
        .or_else(|| v.clone().into_string().ok()?.trim().parse().ok())
        .ok_or_else(|| expected(key, "an integer", v))
}

fn count(key: &str, v: &Dynamic) -> Result<u32, String> {
    let n = integer(key, v)?;
    u32::try_from(n).map_err(|_| format!("{key}: expected a count ≥ 0, found {n}"))
}

/// `1500` (ms) or `"1.5s"`, `"2m"`.
fn duration(key: &str, v: &Dynamic) -> Result<u64, String> {
    quantity(
        key,
        v,
        "duration",
        "1500, \"30s\", \"2m\"",
        parse_duration_ms,
    )
}

/// `"512M"`, `"1G"` or bytes.
fn size(key: &str, v: &Dynamic) -> Result<u64, String> {
    quantity(key, v, "size", "\"512M\", \"1G\"", parse_size_bytes)
}

/// A non-negative integer in the base unit, or a string with a unit that `parse` reads.
fn quantity<E: std::fmt::Display>(
    key: &str,
    v: &Dynamic,
    what: &str,
    examples: &str,
    parse: fn(&str) -> Result<u64, E>,
) -> Result<u64, String> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n).map_err(|_| format!("{key}: a {what} cannot be negative"));
    }
    let text = v
        .clone()
        .into_string()
        .map_err(|_| expected(key, &format!("a {what} ({examples})"), v))?;
    parse(&text).map_err(|e| format!("{key}: {e}"))
}

/// `max_memory_restart`: a size (PM2's form), or `#{ limit, for, growth, window }` for a
/// sustained limit and a leak guard.
fn memory_restart(options: &mut pmx_core::spec::AppOptions, v: &Dynamic) -> Result<(), String> {
    const KEY: &str = "max_memory_restart";
    let Some(map) = v.read_lock::<rhai::Map>().map(|m| m.clone()) else {
        options.max_memory_restart_bytes = Some(size(KEY, v)?);
        return Ok(());
    };
    for (k, value) in &map {
        let key = format!("{KEY}.{k}");
        match k.as_str() {
            "limit" => options.max_memory_restart_bytes = Some(size(&key, value)?),
            // `for` is a Rhai keyword: a script writes `"for": "60s"` or `over: "60s"`.
            "for" | "over" => options.max_memory_restart_for_ms = duration(&key, value)?,
            "growth" => {
                let text = string(&key, value)?;
                let rate = parse_rate_per_hour(&text).map_err(|e| format!("{key}: {e}"))?;
                options.max_memory_growth_per_hour = Some(rate);
            }
            "window" => options.max_memory_growth_window_ms = duration(&key, value)?,
            other => {
                return Err(format!(
                    "{KEY}: unknown key `{other}` (expected limit, for or over, growth, window)"
                ));
            }
        }
    }
    if options.max_memory_restart_bytes.is_none() && options.max_memory_growth_per_hour.is_none() {
        return Err(format!(
            "{KEY}: give a limit (\"512M\") or a growth (\"50M/h\")"
        ));
    }
    Ok(())
}

/// A string (split on whitespace, as PM2 splits `args`) or an array of strings.
fn words(key: &str, v: &Dynamic) -> Result<Vec<String>, String> {
    if let Ok(s) = v.clone().into_string() {
        return Ok(s.split_whitespace().map(String::from).collect());
    }
    strings(key, v)
}

fn strings(key: &str, v: &Dynamic) -> Result<Vec<String>, String> {
    let Some(items) = v.read_lock::<rhai::Array>() else {
        return Err(expected(key, "a string or an array of strings", v));
    };
    items
        .iter()
        .map(|item| {
            item.clone()
                .into_string()
                .map_err(|_| expected(key, "strings in the array", item))
        })
        .collect()
}

fn env_map(key: &str, v: &Dynamic) -> Result<BTreeMap<String, String>, String> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err(expected(key, "a map of variables (#{ PORT: \"3000\" })", v));
    };
    map.iter()
        .map(|(k, value)| {
            // Numbers and booleans are written as PM2 writes them into the environment, and
            // maps and arrays as the JSON PM2 writes for them (`{"HEYYYY":true}`).
            let text = if value.is_string() || value.is_int() || value.is_bool() || value.is_float()
            {
                value.to_string()
            } else if let Some(json) = to_json(value) {
                json.to_string()
            } else {
                return Err(expected(
                    &format!("{key}.{k}"),
                    "a string, number or bool",
                    value,
                ));
            };
            Ok((k.to_string(), text))
        })
        .collect()
}

/// A map, an array or a scalar as JSON; `None` for what JSON cannot hold (a function).
fn to_json(v: &Dynamic) -> Option<serde_json::Value> {
    use serde_json::Value;
    if let Some(map) = v.read_lock::<Map>() {
        let entries = map.iter().map(|(k, v)| Some((k.to_string(), to_json(v)?)));
        return entries.collect::<Option<_>>().map(Value::Object);
    }
    if let Some(items) = v.read_lock::<rhai::Array>() {
        return items
            .iter()
            .map(to_json)
            .collect::<Option<_>>()
            .map(Value::Array);
    }
    if v.is_unit() {
        return Some(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Some(Value::Bool(b));
    }
    if let Ok(n) = v.as_int() {
        return Some(Value::from(n));
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f).map(Value::Number);
    }
    v.clone().into_string().ok().map(Value::String)
}

fn instances(v: &Dynamic) -> Result<u32, String> {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let bad = || expected("instances", "an integer, \"max\" or -1", v);
    let n = match v.as_int() {
        Ok(n) => n,
        Err(_) => match v.clone().into_string().map_err(|_| bad())?.as_str() {
            "max" => 0,
            other => other.parse::<i64>().map_err(|_| bad())?,
        },
    };
    match n {
        0 => Ok(cores()),
        -1 => Ok(cores().saturating_sub(1).max(1)),
        n if (1..=MAX_INSTANCES as i64).contains(&n) => Ok(n as u32),
        n => Err(format!(
            "instances: expected 1 to {MAX_INSTANCES}, \"max\" (0) or -1, found {n}"
        )),
    }
}

/// `log_rotate: #{ max_size: "10M", retain: 30, compress: true, date_format: "...",
/// interval: "0 0 * * *" }`: each one given overrides the daemon's setting.
/// `3000`, `"127.0.0.1:8080"`, `"/run/app.sock"`, or an array of them.
fn listen(v: &Dynamic) -> Result<Vec<String>, String> {
    let one = |item: &Dynamic| -> Result<String, String> {
        let text = match item.as_int() {
            Ok(port) => port.to_string(),
            Err(_) => item
                .clone()
                .into_string()
                .map_err(|_| expected("listen", "a port, an address or a socket path", item))?,
        };
        pmx_core::listen::ListenAddr::parse(&text)?;
        Ok(text)
    };
    match v.read_lock::<rhai::Array>() {
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(v)?]),
    }
}

/// `["db", #{ app: "cache", condition: "ready" }]` (or one of them).
fn depends_on(v: &Dynamic) -> Result<Vec<pmx_core::spec::Dependency>, String> {
    use pmx_core::spec::{Condition, Dependency};
    let one = |item: &Dynamic| -> Result<Dependency, String> {
        if let Ok(app) = item.clone().into_string() {
            return Ok(Dependency {
                app,
                condition: Condition::Started,
            });
        }
        let Some(map) = item.read_lock::<Map>() else {
            return Err(expected(
                "depends_on",
                "app names or maps (#{ app: \"db\", condition: \"ready\" })",
                item,
            ));
        };
        let mut dependency = Dependency {
            app: String::new(),
            condition: Condition::Started,
        };
        for (key, value) in map.iter() {
            match key.as_str() {
                "app" => dependency.app = string("depends_on.app", value)?,
                "condition" => {
                    dependency.condition = match string("depends_on.condition", value)?.as_str() {
                        "started" => Condition::Started,
                        "ready" => Condition::Ready,
                        "healthy" => Condition::Healthy,
                        other => {
                            return Err(format!(
                                "depends_on.condition: expected \"started\", \"ready\" or \"healthy\", found {other:?}"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "depends_on.{other}: unknown (expected app or condition)"
                    ));
                }
            }
        }
        if dependency.app.is_empty() {
            return Err("depends_on: a map needs the app it depends on (app: \"db\")".into());
        }
        Ok(dependency)
    };
    match v.read_lock::<rhai::Array>() {
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(v)?]),
    }
}

/// `#{ url: "http://127.0.0.1:3000/health", interval: "5s", timeout: "1s", failures: 3 }`.
fn health(v: &Dynamic) -> Result<pmx_core::spec::HealthCheck, String> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err(expected(
            "health",
            "a map (#{ url: \"http://127.0.0.1:3000/health\", interval: \"5s\" })",
            v,
        ));
    };
    let mut check = pmx_core::spec::HealthCheck::default();
    for (key, value) in map.iter() {
        let key = format!("health.{key}");
        match key.as_str() {
            "health.url" => check.url = string(&key, value)?,
            "health.interval" => check.interval_ms = duration(&key, value)?,
            "health.timeout" => check.timeout_ms = duration(&key, value)?,
            "health.failures" => check.failures = count(&key, value)?,
            _ => {
                return Err(format!(
                    "{key}: unknown (expected url, interval, timeout or failures)"
                ));
            }
        }
    }
    pmx_core::listen::HttpUrl::parse(&check.url)?;
    if check.failures == 0 || check.interval_ms == 0 || check.timeout_ms == 0 {
        return Err("health: interval, timeout and failures must be above 0".into());
    }
    Ok(check)
}

fn rotate_options(v: &Dynamic) -> Result<RotateOptions, String> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err(expected(
            "log_rotate",
            "a map (#{ max_size: \"10M\", retain: 30 })",
            v,
        ));
    };
    let mut options = RotateOptions::default();
    for (key, value) in map.iter() {
        let key = format!("log_rotate.{key}");
        match key.as_str() {
            "log_rotate.max_size" => options.max_size_bytes = Some(size(&key, value)?),
            "log_rotate.retain" => options.retain = Some(count(&key, value)?),
            "log_rotate.compress" => options.compress = Some(boolean(&key, value)?),
            "log_rotate.date_format" => options.date_format = Some(string(&key, value)?),
            "log_rotate.interval" => {
                let expr = string(&key, value)?;
                validate_cron(&key, &expr)?;
                options.interval = Some(expr);
            }
            _ => {
                return Err(format!(
                    "unknown option `{key}`: log_rotate takes max_size, retain, compress, date_format, interval"
                ));
            }
        }
    }
    Ok(options)
}

fn did_you_mean(key: &str) -> String {
    match crate::suggest(key, OPTIONS.iter().copied()) {
        Some(option) => format!("unknown option `{key}`: did you mean `{option}`?"),
        None => format!("unknown option `{key}`"),
    }
}

/// `path` from `dir`, without `.` steps (`./app.js` and `app.js` are one script).
fn absolute(dir: &Path, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        let joined: std::path::PathBuf = dir.join(path).components().collect();
        joined.to_string_lossy().into_owned()
    }
}

/// A log file's place: absolute, except PM2's `NULL` (no file, as `/dev/null`), which a
/// config writes where it means "discard", never a file named NULL in its directory.
fn log_place(dir: &Path, path: &str) -> String {
    if pmx_core::logs::discards(path) {
        path.to_string()
    } else {
        absolute(dir, path)
    }
}

/// Decodes one app. Returns the spec and every problem found (the spec is only usable when
/// there are none).
pub fn decode(map: &Map, ctx: &DecodeContext) -> (AppSpec, Problems) {
    let mut spec = AppSpec {
        base_env: ctx.base_env.clone(),
        cwd: ctx.dir.to_string_lossy().into_owned(),
        ..AppSpec::default()
    };
    let mut problems = Vec::new();
    let mut env = BTreeMap::new();
    let mut env_over = BTreeMap::new();
    let mut env_file = None;
    let mut append_env_to_name = false;
    for (key, v) in map {
        let key = key.as_str();
        let result: Result<(), String> = (|| {
            match key {
                "name" => spec.name = string(key, v)?,
                // PM2's: with `--env NAME`, the app is named `name-NAME`.
                "append_env_to_name" => append_env_to_name = boolean(key, v)?,
                "script" | "cmd" | "exec" => spec.script = string(key, v)?,
                "args" => spec.args = words(key, v)?,
                "interpreter" | "exec_interpreter" => {
                    spec.interpreter = Interpreter::from_flag(&string(key, v)?)
                }
                "interpreter_args" | "node_args" | "interpreterArgs" => {
                    spec.interpreter_args = Some(words(key, v)?)
                }
                "cwd" => spec.cwd = absolute(ctx.dir, &string(key, v)?),
                "instances" => spec.instances = instances(v)?,
                "exec_mode" => {
                    spec.options.exec_mode = match string(key, v)?.as_str() {
                        "fork" | "fork_mode" => "fork".into(),
                        "cluster" | "cluster_mode" => "cluster".into(),
                        other => {
                            return Err(format!(
                                "exec_mode: expected \"fork\" or \"cluster\", found {other:?}"
                            ));
                        }
                    }
                }
                "env" => env = env_map(key, v)?,
                "env_file" => env_file = Some(absolute(ctx.dir, &string(key, v)?)),
                _ if key.starts_with("env_") => {
                    let vars = env_map(key, v)?;
                    if ctx.env_name == Some(&key[4..]) {
                        env_over = vars;
                    }
                }
                "autorestart" => spec.restart.autorestart = boolean(key, v)?,
                "max_restarts" => spec.restart.max_restarts = count(key, v)?,
                "min_uptime" => spec.restart.min_uptime_ms = duration(key, v)?,
                "restart_delay" => spec.restart.restart_delay_ms = duration(key, v)?,
                "exp_backoff_restart_delay" => {
                    spec.restart.exp_backoff_restart_delay_ms = Some(duration(key, v)?)
                }
                "stop_exit_codes" => {
                    spec.restart.stop_exit_codes = match v.as_int() {
                        Ok(n) => vec![n as i32],
                        Err(_) => v
                            .read_lock::<rhai::Array>()
                            .ok_or_else(|| expected(key, "an exit code or an array of them", v))?
                            .iter()
                            .map(|c| integer(key, c).map(|n| n as i32))
                            .collect::<Result<_, _>>()?,
                    }
                }
                "kill_timeout" => spec.kill_timeout_ms = duration(key, v)?,
                "kill_signal" => {
                    let text = v.to_string();
                    spec.kill_signal = parse_signal(&text)
                        .ok_or_else(|| format!("kill_signal: unknown signal {text:?}"))?;
                }
                "listen_timeout" => spec.options.listen_timeout_ms = duration(key, v)?,
                "wait_ready" => spec.options.wait_ready = boolean(key, v)?,
                "shutdown_with_message" => spec.options.shutdown_with_message = boolean(key, v)?,
                "source_map_support" => spec.options.source_map_support = Some(boolean(key, v)?),
                "disable_source_map_support" => {
                    spec.options.source_map_support = Some(!boolean(key, v)?)
                }
                "max_memory_restart" => memory_restart(&mut spec.options, v)?,
                "cron_restart" | "cron" => {
                    let expr = string(key, v)?;
                    spec.options.cron_restart = Some(validate_cron(key, &expr)?);
                }
                "watch" => {
                    spec.options.watch = match v.as_bool() {
                        Ok(true) => vec![spec.cwd.clone()],
                        Ok(false) => Vec::new(),
                        Err(_) => words(key, v)?,
                    }
                }
                "ignore_watch" => spec.options.ignore_watch = words(key, v)?,
                "watch_delay" => spec.options.watch_delay_ms = duration(key, v)?,
                "out_file" | "out" | "output" | "out_log" => {
                    spec.options.out_file = Some(log_place(ctx.dir, &string(key, v)?))
                }
                "error_file" | "error" | "err" | "err_file" | "err_log" => {
                    spec.options.error_file = Some(log_place(ctx.dir, &string(key, v)?))
                }
                "log_file" | "log" => {
                    spec.options.log_file = Some(log_place(ctx.dir, &string(key, v)?))
                }
                "pid_file" | "pid" => {
                    spec.options.pid_file = Some(absolute(ctx.dir, &string(key, v)?))
                }
                "merge_logs" | "combine_logs" => spec.options.merge_logs = boolean(key, v)?,
                "time" => spec.options.time = boolean(key, v)?,
                "log_date_format" => spec.options.log_date_format = Some(string(key, v)?),
                "log_type" => {
                    spec.options.log_type = match string(key, v)?.as_str() {
                        "raw" => LogType::Raw,
                        "json" => LogType::Json,
                        other => {
                            return Err(format!(
                                "log_type: expected \"raw\" or \"json\", found {other:?}"
                            ));
                        }
                    }
                }
                "log_rotate" => spec.options.log_rotate = rotate_options(v)?,
                "namespace" => spec.options.namespace = string(key, v)?,
                "instance_var" => spec.options.instance_var = string(key, v)?,
                "increment_var" => spec.options.increment_var = Some(string(key, v)?),
                "treekill" => spec.options.treekill = boolean(key, v)?,
                "vizion" => spec.options.vizion = boolean(key, v)?,
                "deep_monitoring" => spec.options.deep_monitoring = boolean(key, v)?,
                "listen" => spec.options.listen = listen(v)?,
                "health" => spec.options.health = Some(health(v)?),
                "depends_on" => spec.options.depends_on = depends_on(v)?,
                _ => return Err(did_you_mean(key)),
            }
            Ok(())
        })();
        if let Err(problem) = result {
            let known = OPTIONS.contains(&key) || ALIASES.contains(&key);
            let unknown = !known && !key.starts_with("env_");
            problems.push(Problem {
                unknown,
                ..Problem::about(key, problem)
            });
        }
    }
    if let Some(path) = env_file {
        match dotenvy::from_path_iter(&path) {
            Ok(vars) => {
                for var in vars {
                    match var {
                        Ok((k, value)) => {
                            env.entry(k).or_insert(value);
                        }
                        Err(e) => problems
                            .push(Problem::about("env_file", format!("env_file {path}: {e}"))),
                    }
                }
            }
            Err(e) => problems.push(Problem::about("env_file", format!("env_file {path}: {e}"))),
        }
    }
    // As PM2: `instances` without `exec_mode` is cluster mode (for Node; others ignore it).
    if map.contains_key("instances") && !map.contains_key("exec_mode") {
        spec.options.exec_mode = "cluster".into();
    }
    env.extend(env_over);
    spec.env = env;
    if spec.script.is_empty() {
        problems.push(Problem::general(
            "script: missing (the file or command to run)".into(),
        ));
    } else {
        if spec.name.is_empty() {
            spec.name = default_name(&spec.script);
        }
        if let (true, Some(env_name)) = (append_env_to_name, ctx.env_name) {
            spec.name = format!("{}-{env_name}", spec.name);
        }
        if spec.script == "serve" && !Path::new(&spec.cwd).join("serve").exists() {
            // PM2's built-in static file server: `pmx serve-files`, set by `PM2_SERVE_*`.
            spec.script = pmx_program();
            spec.args = vec!["serve-files".into()];
            spec.interpreter = Interpreter::None;
            // Online once it listens: the server says so on its channel.
            spec.options.wait_ready = true;
        } else if names_a_file(&spec) {
            spec.script = absolute(Path::new(&spec.cwd), &spec.script);
            if !Path::new(&spec.script).exists() {
                problems.push(Problem::about(
                    "script",
                    format!("script: {} does not exist", spec.script),
                ));
            }
        }
    }
    // An empty script was said above, in the user's words.
    if let (Err(e), false) = (spec.validate(), spec.script.is_empty()) {
        problems.push(Problem::general(e.to_string()));
    }
    (spec, problems)
}

/// The `pmx` program evaluating this config (it serves files for `script: "serve"`).
fn pmx_program() -> String {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "pmx".into())
}

/// Whether `script` means a file (recorded by its absolute path, and it must exist): a path
/// with `/`, a script by its extension, or a file in the cwd. Anything else (`node`, a
/// quoted command line) is looked up in PATH at start, as PM2 does.
fn names_a_file(spec: &AppSpec) -> bool {
    !spec.is_shell_command()
        && (spec.script.contains('/')
            || Interpreter::for_extension(&spec.script).is_some()
            || Path::new(&spec.cwd).join(&spec.script).exists())
}
