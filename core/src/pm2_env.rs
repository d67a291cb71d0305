//! The environment in PM2's `jlist`, as PM2 shows it: `pm2_env.env` holds the app's variables
//! with each instance's own value of its `increment_var`, and the app's `set` values as one
//! JSON object under its name; the same variables are again at the top of `pm2_env` (PM2's
//! processes get `pm2_env` itself as their environment), except where a field of PM2's has the
//! name. A value that is an integer is shown as a number, as an ecosystem file writes `PORT:
//! 3000` and PM2 keeps it, so `jq '.pm2_env.PORT == 3000'` holds under pmx too.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::view::ProcessView;

/// One variable's value: a number when it reads back as the same integer, else the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pm2EnvValue<'a>(pub Cow<'a, str>);

impl Serialize for Pm2EnvValue<'_> {
    fn serialize<S: Serializer>(&self, to: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<i64>() {
            Ok(n) if n.to_string() == self.0 => to.serialize_i64(n),
            _ => to.serialize_str(&self.0),
        }
    }
}

pub type Pm2Vars<'a> = BTreeMap<&'a str, Pm2EnvValue<'a>>;

/// The names `pm2_env` has fields of its own under (a variable of that name is shown only in
/// `env`). A test checks that every field `pm2_env` serializes is here.
pub const PM2_ENV_FIELDS: &[&str] = &[
    "name",
    "pm_id",
    "status",
    "restart_time",
    "unstable_restarts",
    "pm_uptime",
    "created_at",
    "exec_mode",
    "instances",
    "pm_exec_path",
    "pm_cwd",
    "args",
    "exec_interpreter",
    "node_args",
    "autorestart",
    "max_restarts",
    "min_uptime",
    "restart_delay",
    "exp_backoff_restart_delay",
    "stop_exit_codes",
    "kill_timeout",
    "kill_signal",
    "pm_out_log_path",
    "pm_err_log_path",
    "log_lost_bytes",
    "username",
    "env",
    "exit_code",
    "uptime_ms",
    "namespace",
    "cron_restart",
    "watch",
    "watch_paths",
    "ignore_watch",
    "max_memory_restart",
    "merge_logs",
    "pm_log_path",
    "pm_pid_path",
    "wait_ready",
    "listen_timeout",
    "shutdown_with_message",
    "treekill",
    "instance_var",
    "increment_var",
    "vizion",
    "deep_monitoring",
    "versioning",
    "axm_monitor",
    "axm_options",
];

/// `pm2_env.env` and the variables repeated at the top of `pm2_env`, for one instance.
pub fn pm2_vars(p: &ProcessView) -> (Pm2Vars<'_>, Pm2Vars<'_>) {
    let o = &p.spec.options;
    let mut env: Pm2Vars<'_> = (p.spec.env.iter().chain(p.conf_env.iter()))
        .map(|(k, v)| (k.as_str(), Pm2EnvValue(v.as_str().into())))
        .collect();
    // The instance's own value of its increment_var, as its process got it.
    if let Some(var) = &o.increment_var
        && let Some(value) = p.injected.get(var)
    {
        env.insert(var.as_str(), Pm2EnvValue(value.as_str().into()));
    }
    let mut top = env.clone();
    top.retain(|k, _| *k != p.name && !PM2_ENV_FIELDS.contains(k) && *k != o.instance_var);
    let conf = serde_json::to_string(&*p.conf_env).unwrap_or_default();
    env.entry(p.name.as_str())
        .or_insert(Pm2EnvValue(conf.into()));
    (env, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_numbers_and_everything_else_stays_a_string() {
        let shown = |v: &str| serde_json::to_string(&Pm2EnvValue(v.into())).unwrap();
        assert_eq!(shown("3000"), "3000");
        assert_eq!(shown("-1"), "-1");
        assert_eq!(shown("0"), "0");
        for kept in [
            "03000",
            "+1",
            "1.5",
            "",
            " 1",
            "true",
            "99999999999999999999",
        ] {
            assert_eq!(shown(kept), serde_json::to_string(kept).unwrap());
        }
    }
}
