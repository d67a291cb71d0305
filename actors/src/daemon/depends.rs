//! `depends_on` in the daemon: `up` starts apps in waves, each once what it depends on came
//! up (`started`, `ready`, or `healthy`: answering its health check), and `stop` of an app a
//! running app depends on is refused unless forced.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use actix::prelude::*;
use pmx_core::event::Cause;
use pmx_core::listen::HttpUrl;
use pmx_core::protocol::{FailureKind, ProcessList, Response};
use pmx_core::spec::Condition;
use pmx_core::state::{Command, Status};

use super::targets::Picks;
use super::{Daemon, Reply, ready};
use crate::app::{Views, probe};

/// How long a dependent waits for a dependency's first passing health check.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

impl Daemon {
    /// Starts `waves` one after the other; `up` holds, for each app started so far, whether
    /// all its instances came online.
    pub(super) fn start_in_waves(
        &mut self,
        mut waves: VecDeque<Vec<String>>,
        up: BTreeMap<String, bool>,
        cause: Cause,
    ) -> Reply {
        let Some(wave) = waves.pop_front() else {
            return ready(Response::Processes(ProcessList::default()));
        };
        let mut go = Vec::new();
        for name in wave {
            match self.unmet(&name, &up) {
                None => go.push(name),
                Some(why) => self.note(&name, format!("not started: {why}"), cause.clone()),
            }
        }
        if go.is_empty() {
            return self.start_in_waves(waves, up, cause);
        }
        let started = self.control(&go, Command::Start, cause.clone());
        Box::pin(started.then(move |answer, act: &mut Daemon, _| {
            let mut up = up;
            if let Response::Processes(list) = &answer {
                for name in &go {
                    let online = list
                        .processes
                        .iter()
                        .filter(|v| &v.name == name)
                        .all(|v| v.status == Status::Online);
                    up.insert(name.clone(), online);
                }
            }
            let checks = act.health_gates(&go, &waves);
            fut::wrap_future::<_, Daemon>(checks).then(move |healthy, act: &mut Daemon, _| {
                for (name, ok) in healthy {
                    if !ok {
                        up.insert(name, false);
                    }
                }
                act.start_in_waves(waves, up, cause)
            })
        }))
    }

    /// Why `name` may not start yet: a dependency started in this `up` that did not come up.
    fn unmet(&self, name: &str, up: &BTreeMap<String, bool>) -> Option<String> {
        let spec = &self.apps.get(name)?.spec;
        spec.options.depends_on.iter().find_map(|d| {
            let came_up = up.get(&d.app)?;
            (!came_up).then(|| format!("it depends on `{}`, which did not come up", d.app))
        })
    }

    /// Waits, for every app of `wave` a later app needs `healthy`, for its first passing
    /// health check; answers which passed.
    fn health_gates(
        &self,
        wave: &[String],
        later: &VecDeque<Vec<String>>,
    ) -> impl Future<Output = Vec<(String, bool)>> + 'static + use<> {
        // The apps later waves wait on being healthy.
        let awaited: Vec<&str> = later
            .iter()
            .flatten()
            .filter_map(|dependent| self.apps.get(dependent))
            .flat_map(|e| &e.spec.options.depends_on)
            .filter(|d| d.condition == Condition::Healthy)
            .map(|d| d.app.as_str())
            .collect();
        let wanted: Vec<(String, HttpUrl, Duration)> = wave
            .iter()
            .filter(|name| awaited.contains(&name.as_str()))
            .filter_map(|name| {
                let check = self.apps.get(name)?.spec.options.health.clone()?;
                let url = HttpUrl::parse(&check.url).ok()?;
                Some((name.clone(), url, Duration::from_millis(check.timeout_ms)))
            })
            .collect();
        async move {
            let mut results = Vec::new();
            for (name, url, timeout) in wanted {
                let deadline = tokio::time::Instant::now() + HEALTHY_WITHIN;
                let mut ok = false;
                while tokio::time::Instant::now() < deadline {
                    if probe(&url, timeout).await.is_ok() {
                        ok = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                results.push((name, ok));
            }
            results
        }
    }

    /// `stop` without `--force`: refused while an app that is not stopped with them depends
    /// on one of `targets`.
    pub(super) fn stop_checked(
        &mut self,
        targets: Vec<String>,
        force: bool,
        cause: Cause,
    ) -> Reply {
        let picks = match self.resolve_targets(&targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        let stopping: Vec<&String> = picks.iter().map(|(name, _)| name).collect();
        let dependents: Vec<(String, String)> = self
            .apps
            .iter()
            .filter(|(name, _)| !stopping.contains(name))
            .flat_map(|(name, entry)| {
                entry
                    .spec
                    .options
                    .depends_on
                    .iter()
                    .filter(|d| stopping.contains(&&d.app))
                    .map(move |d| (name.clone(), d.app.clone()))
            })
            .collect();
        if force || dependents.is_empty() {
            return self.control(&targets, Command::Stop, cause);
        }
        let picks: Picks = dependents
            .iter()
            .map(|(name, _)| (name.clone(), None))
            .collect();
        let views = self.gather(&picks, &|ids| Views { ids });
        let check = async move {
            let views = views.await;
            let runs = |app: &str| {
                views.iter().any(|v| {
                    v.name == app && !matches!(v.status, Status::Stopped | Status::Errored)
                })
            };
            dependents
                .iter()
                .filter(|(name, _)| runs(name))
                .map(|(name, on)| format!("`{name}` depends on `{on}`"))
                .collect::<Vec<_>>()
        };
        Box::pin(
            fut::wrap_future::<_, Daemon>(check).then(move |live, act: &mut Daemon, _| {
                if live.is_empty() {
                    return act.control(&targets, Command::Stop, cause);
                }
                ready(Response::failure(
                    FailureKind::Conflict,
                    format!(
                        "{} and runs: stop it first, or pass --force",
                        live.join(", ")
                    ),
                ))
            }),
        )
    }
}
