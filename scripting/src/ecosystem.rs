//! PM2 ecosystem files: JSON, YAML, TOML, and `ecosystem.config.js` (run by the machine's
//! `node`, which prints `module.exports` as JSON). Each becomes the same app maps a Rhai
//! script declares, so one decoder validates them all.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rhai::{Dynamic, Map};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use serde_json::Value;

use crate::{Diagnostic, locate};

/// The kinds of config file pmx reads, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rhai,
    Json,
    Yaml,
    Toml,
    /// JavaScript, evaluated by node.
    Js,
}

impl Format {
    pub fn of(file: &Path) -> Option<Format> {
        let ext = file.extension()?.to_str()?;
        Some(match ext {
            "rhai" => Format::Rhai,
            "json" => Format::Json,
            "yml" | "yaml" => Format::Yaml,
            "toml" => Format::Toml,
            "js" | "cjs" | "mjs" => Format::Js,
            _ => return None,
        })
    }
}

/// Prints a config module's export as JSON: `module.exports` of CommonJS, the default export
/// of an ES module.
const EXPORT_AS_JSON: &str = "const {pathToFileURL}=require('url');\
import(pathToFileURL(process.argv[1]).href)\
.then(m=>{const v=m.default===undefined?m:m.default;process.stdout.write(JSON.stringify(v))})\
.catch(e=>{process.stderr.write(String(e&&e.stack||e));process.exit(1)})";

/// Prints a `.json` file that is no JSON as PM2 reads it: a JavaScript expression (comments,
/// unquoted keys, even code), evaluated in a context of its own for at most a second.
/// (node's `vm` is no sandbox: the file is the user's own, run with their rights, as PM2 does.)
const EXPRESSION_AS_JSON: &str = "const f=process.argv[1];\
const v=require('vm').runInNewContext('('+require('fs').readFileSync(0,'utf8')+'\\n)',{},{filename:f,timeout:1000});\
process.stdout.write(JSON.stringify(v))";

/// How long node may take to read a config: an endless loop in one is an error, not a hang.
const NODE_LIMIT: Duration = Duration::from_secs(10);

/// A problem with the whole file, at a place when known.
fn whole(line: usize, column: usize, message: String) -> Vec<Diagnostic> {
    vec![Diagnostic {
        line,
        column,
        message,
    }]
}

/// Parses a data file (or runs a JS one) into its top-level value.
pub fn parse(file: &Path, source: &str, format: Format) -> Result<Value, Vec<Diagnostic>> {
    match format {
        // PM2 evaluates a .json file as JavaScript; node does the same here for a file that
        // is no JSON, and when it cannot either, the JSON error (with its place) is the one said.
        Format::Json => serde_json::from_str(source).or_else(|e| {
            run_node(EXPRESSION_AS_JSON, file, Some(source))
                .map_err(|_| whole(e.line(), e.column(), format!("invalid JSON: {e}")))
        }),
        Format::Yaml => yaml_serde::from_str(source).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            whole(line, column, format!("invalid YAML: {e}"))
        }),
        Format::Toml => toml::from_str(source).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((0, 0), |span| locate::line_col(source, span.start));
            whole(line, column, format!("invalid TOML: {}", e.message()))
        }),
        Format::Js => run_node(EXPORT_AS_JSON, file, None),
        Format::Rhai => Err(whole(0, 0, "a Rhai script is evaluated, not parsed".into())),
    }
}

/// Runs `script` in node with `file` as its argument (and `input` on its stdin), and reads
/// what it prints as JSON.
fn run_node(script: &str, file: &Path, input: Option<&str>) -> Result<Value, Vec<Diagnostic>> {
    let (output, timed_out) = node_output(script, file, input).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "node is not installed (not found in PATH)".to_string()
        } else {
            format!("cannot run node: {e}")
        };
        whole(
            0,
            0,
            format!(
                "{why}: a .js ecosystem file is read by running node; \
                     use a .json, .yml, .toml or .rhai config instead"
            ),
        )
    })?;
    if timed_out {
        return Err(whole(
            0,
            0,
            format!(
                "node did not finish reading the file in {} s (an endless loop?)",
                NODE_LIMIT.as_secs()
            ),
        ));
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(whole(
            0,
            0,
            format!("node could not load the file:\n{}", stderr.trim_end()),
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| whole(0, 0, format!("node printed no JSON for the export: {e}")))
}

/// node's output for `script` run on `file`, with `input` written to its stdin (from another
/// thread, so that a large output never waits for a large input), and whether it was killed
/// for running past `NODE_LIMIT`.
fn node_output(
    script: &str,
    file: &Path,
    input: Option<&str>,
) -> std::io::Result<(std::process::Output, bool)> {
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .arg(file)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take();
    // Through a pidfd, opened before the child can be reaped: never a reused pid.
    let pidfd = pidfd_open(Pid::from_child(&child), PidfdFlags::empty()).ok();
    std::thread::scope(|scope| {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            // A node that exits early closes the pipe: its output says why.
            scope.spawn(move || stdin.write_all(input.as_bytes()));
        }
        let (finished, finishing) = mpsc::channel::<()>();
        let watchdog = scope.spawn(move || {
            let late = finishing.recv_timeout(NODE_LIMIT) == Err(RecvTimeoutError::Timeout);
            if let (true, Some(pidfd)) = (late, &pidfd) {
                let _ = pidfd_send_signal(pidfd, Signal::KILL);
            }
            late
        });
        let output = child.wait_with_output();
        drop(finished);
        Ok((output?, watchdog.join().unwrap_or(false)))
    })
}

/// The app objects of an ecosystem value: `{ apps: [...] }` (or PM2's older `pm2: [...]`),
/// `{ apps: {...} }`, a bare array, or one app object. Of PM2's `deploy` section, only what
/// PM2 also applies to a start: with `--env NAME`, `deploy.NAME.env` is merged over each
/// app's `env` (and `env_NAME` over both, later).
pub fn apps_of(
    value: Value,
    env_name: Option<&str>,
) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    let deploy_env = match (&value, env_name) {
        (Value::Object(top), Some(name)) => top
            .get("deploy")
            .and_then(|d| d.get(name))
            .and_then(|d| d.get("env"))
            .and_then(Value::as_object)
            .cloned(),
        _ => None,
    };
    let statics = match &value {
        Value::Object(top) => top.get("static").cloned(),
        _ => None,
    };
    let mut apps = app_objects(value)?;
    if let Some(statics) = statics {
        apps.extend(static_apps(statics)?);
    }
    if let Some(vars) = deploy_env {
        for app in &mut apps {
            let env = app
                .entry("env")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(env) = env {
                env.extend(vars.clone());
            }
        }
    }
    Ok(apps)
}

/// PM2's `static: [{ path, port, spa, homepage, basic_auth: { username, password } }]`: a
/// static file server app each (`script: "serve"`, named `static-page-server-PORT`).
fn static_apps(statics: Value) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    let list = match statics {
        Value::Array(list) => list,
        one @ Value::Object(_) => vec![one],
        other => return Err(format!("static: expected a list of servers, found {other}")),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, server)| {
            let Value::Object(server) = server else {
                return Err(format!("static[{i}]: expected an object"));
            };
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let port = server.get("port").map_or("8080".into(), text);
            let mut env = serde_json::Map::new();
            env.insert("PM2_SERVE_PORT".into(), port.clone().into());
            env.insert(
                "PM2_SERVE_PATH".into(),
                server.get("path").map_or(".".into(), text).into(),
            );
            if let Some(spa) = server.get("spa") {
                env.insert("PM2_SERVE_SPA".into(), text(spa).into());
            }
            if let Some(home) = server.get("homepage") {
                env.insert("PM2_SERVE_HOMEPAGE".into(), text(home).into());
            }
            if let Some(Value::Object(auth)) = server.get("basic_auth") {
                env.insert("PM2_SERVE_BASIC_AUTH".into(), "true".into());
                for (key, var) in [("username", "USERNAME"), ("password", "PASSWORD")] {
                    let value = auth.get(key).map_or(String::new(), text);
                    env.insert(format!("PM2_SERVE_BASIC_AUTH_{var}"), value.into());
                }
            }
            let mut app = serde_json::Map::new();
            let name = server
                .get("name")
                .map_or_else(|| format!("static-page-server-{port}"), text);
            app.insert("name".into(), name.into());
            app.insert("script".into(), "serve".into());
            app.insert("env".into(), Value::Object(env));
            Ok(app)
        })
        .collect()
}

fn app_objects(value: Value) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    let list = match value {
        Value::Object(mut top) => match top.remove("apps").or_else(|| top.remove("pm2")) {
            Some(Value::Array(list)) => list,
            Some(one @ Value::Object(_)) => vec![one],
            Some(other) => {
                return Err(format!("apps: expected a list of apps, found {other}"));
            }
            None if top.contains_key("script") => vec![Value::Object(top)],
            None if top.contains_key("static") => Vec::new(),
            None => return Err("expected an `apps` list (PM2's ecosystem layout)".into()),
        },
        Value::Array(list) => list,
        other => return Err(format!("expected an `apps` list, found {other}")),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, app)| match app {
            Value::Object(map) => Ok(map),
            other => Err(format!("apps[{i}]: expected an app object, found {other}")),
        })
        .collect()
}

/// A JSON value as the Rhai value a script would have written.
pub fn to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items.iter().map(to_dynamic).collect::<rhai::Array>().into(),
        Value::Object(map) => to_map(map).into(),
    }
}

pub fn to_map(map: &serde_json::Map<String, Value>) -> Map {
    map.iter()
        .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
        .collect()
}
