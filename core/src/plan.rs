//! The plan of `pmx up`: what converging the daemon to a config changes, app by app. Pure:
//! the daemon computes it against its registry, the CLI prints it like a diff.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::AppSpec;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Step {
    /// Declared, not registered: register and start.
    Add { name: String, instances: u32 },
    /// Registered with another spec: take the new one and restart.
    Change { name: String, changes: Vec<String> },
    /// Registered with the same spec: left alone (started if it is not running).
    Same { name: String },
    /// Registered, no longer declared, and `--prune`: stopped and deleted.
    Remove { name: String },
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::Add { name, .. }
            | Step::Change { name, .. }
            | Step::Same { name }
            | Step::Remove { name } => name,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Add { name, instances: 1 } => write!(f, "+ {name}"),
            Step::Add { name, instances } => write!(f, "+ {name} ({instances} instances)"),
            Step::Change { name, changes } => write!(f, "~ {name}: {}", changes.join(", ")),
            Step::Same { name } => write!(f, "= {name}"),
            Step::Remove { name } => write!(f, "- {name}"),
        }
    }
}

/// With `--update-env`: an app whose whole environment (captured one included) differs is a
/// change too, naming the variables.
pub fn count_env_updates(
    steps: &mut [Step],
    current: &BTreeMap<String, AppSpec>,
    declared: &[AppSpec],
) {
    for step in steps.iter_mut() {
        let Step::Same { name } = step else { continue };
        let (Some(old), Some(new)) = (current.get(name), declared.iter().find(|d| &d.name == name))
        else {
            continue;
        };
        let changes = old.env_differences(new);
        if !changes.is_empty() {
            *step = Step::Change {
                name: name.clone(),
                changes,
            };
        }
    }
}

/// Declared apps in their order, then (with `prune`) registered apps no longer declared.
pub fn plan(current: &BTreeMap<String, AppSpec>, declared: &[AppSpec], prune: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = declared
        .iter()
        .map(|spec| match current.get(&spec.name) {
            None => Step::Add {
                name: spec.name.clone(),
                instances: spec.instances,
            },
            Some(old) => {
                let changes = old.differences(spec);
                if changes.is_empty() {
                    Step::Same {
                        name: spec.name.clone(),
                    }
                } else {
                    Step::Change {
                        name: spec.name.clone(),
                        changes,
                    }
                }
            }
        })
        .collect();
    if prune {
        steps.extend(
            current
                .keys()
                .filter(|name| !declared.iter().any(|d| &d.name == *name))
                .map(|name| Step::Remove { name: name.clone() }),
        );
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, instances: u32, level: &str) -> AppSpec {
        AppSpec {
            name: name.into(),
            script: "/srv/app.js".into(),
            instances,
            env: BTreeMap::from([("LOG_LEVEL".to_string(), level.to_string())]),
            ..AppSpec::default()
        }
    }

    fn shown(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn plans_read_like_a_diff() {
        let current = BTreeMap::from([
            ("worker".to_string(), spec("worker", 2, "info")),
            ("cron-job".to_string(), spec("cron-job", 1, "info")),
            ("old-api".to_string(), spec("old-api", 1, "info")),
        ]);
        let mut cron = spec("cron-job", 1, "info");
        // The captured environment is not part of the comparison (PM2 keeps the old one).
        cron.base_env = std::sync::Arc::new(BTreeMap::from([("X".into(), "y".into())]));
        let declared = vec![spec("api", 4, "info"), spec("worker", 3, "debug"), cron];
        let expected = "+ api (4 instances)\n\
                        ~ worker: env.LOG_LEVEL, instances 2 → 3\n\
                        = cron-job\n\
                        - old-api";
        assert_eq!(shown(&plan(&current, &declared, true)), expected);
        let without_prune = plan(&current, &declared, false);
        assert_eq!(without_prune.len(), 3, "nothing removed without --prune");
        // With --update-env it does count, by name: a variable added, one removed.
        let mut steps = without_prune;
        let mut current = current;
        if let Some(cron) = current.get_mut("cron-job") {
            cron.base_env = std::sync::Arc::new(BTreeMap::from([("GONE".into(), "1".into())]));
        }
        count_env_updates(&mut steps, &current, &declared);
        assert_eq!(steps[2].to_string(), "~ cron-job: env.GONE, env.X");
    }

    #[test]
    fn long_environment_changes_are_summed_up() {
        let old = spec("a", 1, "info");
        let mut new = old.clone();
        new.base_env = std::sync::Arc::new(
            (0..20)
                .map(|i| (format!("V{i:02}"), "x".to_string()))
                .collect(),
        );
        let changes = old.env_differences(&new);
        assert_eq!(changes.len(), 9);
        assert_eq!(changes[0], "env.V00");
        assert_eq!(changes[8], "12 more variables");
    }

    #[test]
    fn nested_and_optional_fields_are_named() {
        let old = spec("a", 1, "info");
        let mut new = old.clone();
        new.restart.max_restarts = 5;
        new.options.max_memory_restart_bytes = Some(1024);
        new.options.exec_mode = "cluster".into();
        new.interpreter = crate::spec::Interpreter::Program("node".into());
        new.kill_signal = 15;
        new.restart.min_uptime_ms = 5000;
        // In the user's words: PM2's option names, sizes, durations, signal names.
        assert_eq!(
            old.differences(&new),
            vec![
                "exec_mode fork → cluster",
                "interpreter auto → node",
                "kill_signal SIGINT → SIGTERM",
                "max_memory_restart unset → 1.0kb",
                "max_restarts 16 → 5",
                "min_uptime 1000ms → 5000ms",
            ]
        );
    }
}
