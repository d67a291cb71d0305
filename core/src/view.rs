//! What `list`, `describe` and `jlist` show: one `ProcessView` per instance, and the PM2
//! `jlist` shape built from it so tools written for `pm2 jlist` work unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::pm2_env::{Pm2Vars, pm2_vars};
use crate::spec::{AppSpec, REDACTED};
use crate::state::{Exit, Status};

/// One instance, as the daemon sees it now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessView {
    /// PM2's `pm_id`: stable across restarts.
    pub id: u32,
    pub name: String,
    /// Index among the app's instances (`NODE_APP_INSTANCE`).
    pub index: u32,
    pub status: Status,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub unstable_restarts: u32,
    /// When the current process started (PM2's `pm_uptime`).
    pub started_at: Option<Millis>,
    pub created_at: Millis,
    /// CPU % since the previous look at this process.
    pub cpu: f32,
    /// Resident memory in bytes.
    pub memory: u64,
    pub user: Arc<str>,
    pub last_exit: Option<Exit>,
    /// Why the instance is errored.
    pub error: Option<String>,
    /// The command line the daemon runs.
    pub command: Arc<[String]>,
    pub out_log: Arc<str>,
    pub error_log: Arc<str>,
    /// The file holding its pid while it runs (`pid_file`, else `pids/NAME-ID.pid`).
    #[serde(default)]
    pub pid_path: Arc<str>,
    /// The instance's whole process tree, and averages.
    #[serde(default)]
    pub usage: Usage,
    /// Output dropped because a log file could not be written.
    #[serde(default)]
    pub log_lost_bytes: u64,
    /// Why, the last time.
    #[serde(default)]
    pub log_error: Option<String>,
    /// What the instance wrote since the daemon started.
    #[serde(default)]
    pub output: OutputCounts,
    /// Actions policies took on the instance, by policy (`max_memory_restart`, `watch`, a
    /// rule's name).
    #[serde(default)]
    pub policy_actions: BTreeMap<String, u64>,
    /// `stop` paused the watching of the spec's paths (PM2: `watch` turns false).
    #[serde(default)]
    pub watch_paused: bool,
    /// The `pmx set` values its process was started with (part of its environment).
    #[serde(default)]
    pub conf_env: Arc<BTreeMap<String, String>>,
    /// Everything pmx added to its process's environment (`pmx env` shows it).
    #[serde(default)]
    pub injected: Arc<BTreeMap<String, String>>,
    /// What the instance's agent reported (PM2's `axm_monitor`, `axm_options`).
    #[serde(default)]
    pub agent: Option<Arc<crate::agent::AgentReport>>,
    /// The git version of the code, read when the instance started (`vizion`).
    #[serde(default)]
    pub versioning: Option<Arc<crate::versioning::Versioning>>,
    /// The app's spec, shared with the daemon (views are made often). It leaves the daemon
    /// without the captured environment's values: serialized without `base_env`.
    #[serde(serialize_with = "without_base_env")]
    pub spec: Arc<AppSpec>,
}

/// A view's spec as it leaves the daemon: the captured environment is the CLI's whole
/// environment, which only `pmx env` shows, to the daemon's user.
fn without_base_env<S: serde::Serializer>(spec: &Arc<AppSpec>, to: S) -> Result<S::Ok, S::Error> {
    if spec.base_env.is_empty() {
        return spec.serialize(to);
    }
    let mut shown = (**spec).clone();
    shown.base_env = Arc::default();
    shown.serialize(to)
}

impl ProcessView {
    /// Every environment value it carries (the spec's, the `pmx set` values, what pmx added)
    /// replaced by `REDACTED`, keys kept: views that leave for anyone but `pmx env`.
    pub fn redact_env(&mut self) {
        Arc::make_mut(&mut self.spec).redact_env();
        for map in [&mut self.conf_env, &mut self.injected] {
            if !map.is_empty() {
                let keys = map.keys().map(|k| (k.clone(), REDACTED.to_string()));
                *map = Arc::new(keys.collect());
            }
        }
    }

    /// Whether the instance runs in PM2's cluster mode: a Node app whose instances are the
    /// daemon's cluster workers (other interpreters run `cluster` apps as plain processes).
    pub fn cluster_mode(&self) -> bool {
        self.spec.cluster_mode(&self.command)
    }
}

/// Lines and bytes an instance wrote, per stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputCounts {
    pub out_lines: u64,
    pub out_bytes: u64,
    pub err_lines: u64,
    pub err_bytes: u64,
}

/// What the sampler measured of an instance beyond its own process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// CPU % of the process and every descendant.
    pub tree_cpu: f32,
    pub tree_memory: u64,
    /// Processes in the tree.
    pub processes: u32,
    /// Tree CPU % averaged over 1, 5 and 15 minutes.
    pub cpu_avg: [f32; 3],
    pub memory_avg: [u64; 3],
}

/// PM2's `jlist` object for one process, serialized straight from the view (no JSON tree
/// is built: `jlist` of 500 apps is on the hot path of every script that polls it).
#[derive(Serialize)]
pub struct Pm2Process<'a> {
    pid: u32,
    name: &'a str,
    pm_id: u32,
    monit: Pm2Monit,
    pm2_env: Pm2Env<'a>,
}

#[derive(Serialize)]
struct Pm2Monit {
    memory: u64,
    cpu: f32,
    tree_memory: u64,
    tree_cpu: f32,
    processes: u32,
    cpu_avg: [f32; 3],
    memory_avg: [u64; 3],
}

#[derive(Serialize)]
struct Pm2Env<'a> {
    name: &'a str,
    pm_id: u32,
    status: &'a str,
    restart_time: u32,
    unstable_restarts: u32,
    pm_uptime: Millis,
    created_at: Millis,
    exec_mode: &'a str,
    instances: u32,
    /// The instance's number under its `instance_var` (`NODE_APP_INSTANCE: 0`), as PM2 has it.
    #[serde(flatten)]
    instance_number: BTreeMap<&'a str, u32>,
    pm_exec_path: &'a str,
    pm_cwd: &'a str,
    args: &'a [String],
    exec_interpreter: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_args: Option<&'a [String]>,
    autorestart: bool,
    max_restarts: u32,
    min_uptime: Millis,
    restart_delay: Millis,
    exp_backoff_restart_delay: Option<Millis>,
    stop_exit_codes: &'a [i32],
    kill_timeout: Millis,
    kill_signal: std::borrow::Cow<'static, str>,
    pm_out_log_path: &'a str,
    pm_err_log_path: &'a str,
    log_lost_bytes: u64,
    username: &'a str,
    /// The declared environment and the `pmx set` values the process got (`pm2_env`).
    env: Pm2Vars<'a>,
    exit_code: Option<i32>,
    uptime_ms: Option<Millis>,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron_restart: Option<&'a str>,
    /// PM2 says whether it watches; the paths are in `watch_paths`.
    watch: bool,
    watch_paths: &'a [String],
    ignore_watch: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_memory_restart: Option<u64>,
    merge_logs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pm_log_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pm_pid_path: Option<&'a str>,
    wait_ready: bool,
    listen_timeout: Millis,
    shutdown_with_message: bool,
    treekill: bool,
    instance_var: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    increment_var: Option<&'a str>,
    vizion: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deep_monitoring: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    versioning: Option<&'a crate::versioning::Versioning>,
    /// The agent's figures and options, under PM2's names.
    #[serde(skip_serializing_if = "Option::is_none")]
    axm_monitor: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    axm_options: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The variables again, at the top as PM2 has them (`pm2_env`).
    #[serde(flatten)]
    vars: Pm2Vars<'a>,
}

impl<'a> Pm2Process<'a> {
    /// The `pm2_env` object alone: what PM2's `dump.pm2` holds for each process.
    pub fn into_env(self) -> impl Serialize + 'a {
        self.pm2_env
    }
}

/// PM2's `jlist` object for one process, at time `now`.
pub fn pm2_json(p: &ProcessView, now: Millis) -> Pm2Process<'_> {
    let s = &p.spec;
    let o = &s.options;
    let interpreter = match &s.interpreter {
        crate::spec::Interpreter::Auto => p.command.first().map_or("", String::as_str),
        crate::spec::Interpreter::None => "none",
        crate::spec::Interpreter::Program(prog) => prog,
    };
    let status = match p.status {
        Status::WaitingRestart => "waiting restart",
        other => other.as_str(),
    };
    let (env, vars) = pm2_vars(p);
    Pm2Process {
        pid: p.pid.unwrap_or(0),
        name: &p.name,
        pm_id: p.id,
        monit: Pm2Monit {
            memory: p.memory,
            cpu: p.cpu,
            tree_memory: p.usage.tree_memory,
            tree_cpu: p.usage.tree_cpu,
            processes: p.usage.processes,
            cpu_avg: p.usage.cpu_avg,
            memory_avg: p.usage.memory_avg,
        },
        pm2_env: Pm2Env {
            name: &p.name,
            pm_id: p.id,
            status,
            restart_time: p.restarts,
            unstable_restarts: p.unstable_restarts,
            pm_uptime: p.started_at.unwrap_or(p.created_at),
            created_at: p.created_at,
            exec_mode: if p.cluster_mode() {
                "cluster_mode"
            } else {
                "fork_mode"
            },
            instances: s.instances,
            instance_number: BTreeMap::from([(o.instance_var.as_str(), p.index)]),
            pm_exec_path: &s.script,
            pm_cwd: &s.cwd,
            args: &s.args,
            exec_interpreter: interpreter,
            node_args: s.interpreter_args.as_deref(),
            autorestart: s.restart.autorestart,
            max_restarts: s.restart.max_restarts,
            min_uptime: s.restart.min_uptime_ms,
            restart_delay: s.restart.restart_delay_ms,
            exp_backoff_restart_delay: s.restart.exp_backoff_restart_delay_ms,
            stop_exit_codes: &s.restart.stop_exit_codes,
            kill_timeout: s.kill_timeout_ms,
            kill_signal: crate::signal::signal_name(s.kill_signal),
            pm_out_log_path: &p.out_log,
            pm_err_log_path: &p.error_log,
            log_lost_bytes: p.log_lost_bytes,
            username: &p.user,
            env,
            exit_code: p.last_exit.and_then(|e| e.code),
            uptime_ms: p.started_at.map(|t| now.saturating_sub(t)),
            namespace: &o.namespace,
            cron_restart: o.cron_restart.as_deref(),
            watch: !o.watch.is_empty() && !p.watch_paused,
            watch_paths: &o.watch,
            ignore_watch: &o.ignore_watch,
            max_memory_restart: o.max_memory_restart_bytes,
            merge_logs: o.merge_logs,
            pm_log_path: o.log_file.as_deref(),
            pm_pid_path: Some(&p.pid_path).filter(|p| !p.is_empty()).map(|p| &**p),
            wait_ready: o.wait_ready,
            listen_timeout: o.listen_timeout_ms,
            shutdown_with_message: o.shutdown_with_message,
            treekill: o.treekill,
            instance_var: &o.instance_var,
            increment_var: o.increment_var.as_deref(),
            vizion: o.vizion,
            deep_monitoring: o.deep_monitoring,
            versioning: p.versioning.as_deref(),
            axm_monitor: p.agent.as_ref().map(|a| &a.monitor),
            axm_options: p.agent.as_ref().map(|a| &a.options),
            vars,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pm2_env::PM2_ENV_FIELDS;
    use serde_json::json;

    #[test]
    fn a_view_leaves_without_the_captured_environment_and_keeps_the_rest() {
        let mut view: ProcessView = serde_json::from_value(serde_json::json!({
            "id": 0, "name": "api", "index": 0, "status": "online", "pid": 100,
            "restarts": 0, "unstable_restarts": 0, "started_at": 0, "created_at": 0,
            "cpu": 1.0, "memory": 10, "user": "me", "last_exit": null, "error": null,
            "command": [], "out_log": "", "error_log": "",
            "spec": {"name": "api", "script": "x", "cwd": "/", "env": {"LEVEL": "debug"}}
        }))
        .unwrap();
        let spec = Arc::make_mut(&mut view.spec);
        spec.base_env = Arc::new([("SECRET".to_string(), "hunter2".to_string())].into());
        let shared = view.spec.clone();
        let json = serde_json::to_string(&view).unwrap();
        assert!(
            !json.contains("SECRET") && !json.contains("hunter2"),
            "{json}"
        );
        assert!(json.contains(r#""env":{"LEVEL":"debug"}"#), "{json}");
        assert_eq!(shared.base_env.len(), 1, "the daemon's spec keeps it");
    }

    /// Every field of `pm2_env` is in `PM2_ENV_FIELDS`, so a variable never repeats a key.
    #[test]
    fn pm2_env_fields_are_all_listed_and_variables_never_shadow_them() {
        let mut view: ProcessView = serde_json::from_value(serde_json::json!({
            "id": 3, "name": "api", "index": 1, "status": "online", "pid": 100,
            "restarts": 0, "unstable_restarts": 0, "started_at": 0, "created_at": 0,
            "cpu": 1.0, "memory": 10, "user": "me", "last_exit": null, "error": null,
            "command": ["node"], "out_log": "/o", "error_log": "/e", "pid_path": "/p",
            "injected": {"PORT": "3001", "APP_ID": "1"},
            "agent": {"monitor": {}, "options": {"module_name": "api"}},
            "versioning": {"type": "git", "repo_path": "/src"},
            "spec": {"name": "api", "script": "x", "cwd": "/",
                     "env": {"PORT": "3000", "name": "shadow", "status": "x", "LEVEL": "debug"},
                     "increment_var": "PORT", "instance_var": "APP_ID",
                     "cron_restart": "0 * * * *", "log_file": "/l",
                     "max_memory_restart_bytes": 1, "interpreter_args": ["--x"],
                     "deep_monitoring": true}
        }))
        .unwrap();
        view.conf_env = Arc::new([("color".to_string(), "blue".to_string())].into());
        let json = serde_json::to_value(pm2_json(&view, 0)).unwrap();
        let env = json["pm2_env"].as_object().unwrap();
        let own: Vec<&String> = env
            .keys()
            .filter(|k| !["PORT", "LEVEL", "color", "APP_ID"].contains(&k.as_str()))
            .collect();
        for key in own {
            assert!(
                PM2_ENV_FIELDS.contains(&key.as_str()),
                "{key} is not listed"
            );
        }
        assert_eq!(env["name"], "api", "a variable never replaces a field");
        assert_eq!(env["status"], "online");
        assert_eq!(
            (&env["PORT"], &env["env"]["PORT"]),
            (&json!(3001), &json!(3001))
        );
        assert_eq!(
            (&env["LEVEL"], &env["color"]),
            (&json!("debug"), &json!("blue"))
        );
        assert_eq!(
            env["APP_ID"], 1,
            "the instance number under its instance_var"
        );
        assert_eq!(env["env"]["api"], r#"{"color":"blue"}"#);
        assert!(env.get("api").is_none(), "the set values stay in env");
        let text = serde_json::to_string(&pm2_json(&view, 0)).unwrap();
        assert_eq!(text.matches(r#""name":"api""#).count(), 2, "{text}");
        assert_eq!(
            text.matches(r#""name":"shadow""#).count(),
            1,
            "only in env: {text}"
        );
    }
}
