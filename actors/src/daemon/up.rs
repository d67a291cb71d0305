//! `pmx up`: converge to a config. The plan is computed against the registry; every declared
//! spec is checked before anything is done; the revision and each app's change are journaled
//! (flushed) before acting. Changed and pruned apps are stopped first; then changed apps come
//! back with their new spec (keeping their ids), new apps are registered, and every declared
//! app is started (a no-op for one already online).

use std::collections::BTreeMap;

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::order::start_waves;
use pmx_core::plan::{Step, count_env_updates, plan};
use pmx_core::protocol::{
    FailureKind, PlanReport, ProcessList, RejectedConfig, ReloadRequest, Response, RulesSwap,
    Unchanged, UpRequest,
};
use pmx_core::spec::AppSpec;
use pmx_core::state::Command;

use super::start::check;
use super::targets::Picks;
use super::{Daemon, Reply, internal, ready};
use crate::app::Retire;

fn event(app: &str, kind: EventKind, cause: &Cause) -> NewEvent {
    NewEvent {
        app: app.to_string(),
        instance: None,
        kind,
        cause: cause.clone(),
    }
}

impl Daemon {
    pub(super) fn reject_config(&mut self, r: RejectedConfig, cause: Cause) -> Response {
        let rejected = EventKind::ConfigRejected {
            source: r.source,
            errors: r.errors,
        };
        match self.record(vec![event("", rejected, &cause)]) {
            Ok(()) => Response::Plan(PlanReport {
                revision: None,
                steps: Vec::new(),
                rules: None,
            }),
            Err(e) => internal(e),
        }
    }

    pub(super) fn up(&mut self, mut req: UpRequest, cause: Cause) -> Reply {
        let current: BTreeMap<String, AppSpec> = self
            .apps
            .iter()
            .map(|(name, entry)| (name.clone(), (*entry.spec).clone()))
            .collect();
        let mut steps = plan(&current, &req.apps, req.prune);
        // A renamed app goes under its old name (its ids go to the new one).
        for (old, _) in &req.renamed {
            steps.push(Step::Remove { name: old.clone() });
        }
        if req.update_env {
            count_env_updates(&mut steps, &current, &req.apps);
        }
        if req.dry_run {
            return ready(Response::Plan(PlanReport {
                revision: None,
                steps,
                rules: None,
            }));
        }
        let mut problems: Vec<String> = req
            .apps
            .iter()
            .filter_map(|spec| {
                check(spec)
                    .err()
                    .map(|e| format!("app `{}`: {e}", spec.name))
            })
            .collect();
        if let Err((first, cycle)) = start_waves(&req.apps) {
            problems.push(format!("app `{first}`: {cycle}"));
        }
        if !problems.is_empty() {
            let errors = problems.join("\n");
            let refused = RejectedConfig {
                source: req.source,
                errors: errors.clone(),
            };
            self.reject_config(refused, cause);
            return ready(Response::failure(FailureKind::Invalid, errors));
        }
        let Some(rules) = req.rules.take() else {
            return self.apply(req, steps, Vec::new(), None, cause);
        };
        // The rules are compiled by the runner before anything changes: a script it refuses
        // changes nothing. The runner answers in order: `before` is what `load` replaces.
        let before = self.shared.policy.status();
        let loading = self.shared.policy.load(rules.clone());
        let loading = async move {
            let before = before.await.map(|l| l.rules).unwrap_or_default();
            (before, loading.await)
        };
        Box::pin(
            fut::wrap_future::<_, Self>(loading).then(
                move |(before, loaded), act, _| match loaded {
                    Ok(Ok(names)) => {
                        let swap = RulesSwap {
                            before: before.into_iter().map(|r| r.name).collect(),
                            after: names.clone(),
                        };
                        let kind = EventKind::RulesLoaded {
                            source: rules.source,
                            script: rules.script,
                            rules: names,
                            vars: rules.vars,
                        };
                        act.apply(req, steps, vec![event("", kind, &cause)], Some(swap), cause)
                    }
                    Ok(Err(errors)) => {
                        let refused = RejectedConfig {
                            source: req.source,
                            errors: errors.clone(),
                        };
                        act.reject_config(refused, cause);
                        ready(Response::failure(FailureKind::Invalid, errors))
                    }
                    Err(_) => ready(internal("the rules runner is not running")),
                },
            ),
        )
    }

    /// Journals the revision (with `extra` events) and converges.
    fn apply(
        &mut self,
        req: UpRequest,
        steps: Vec<Step>,
        extra: Vec<NewEvent>,
        rules: Option<RulesSwap>,
        cause: Cause,
    ) -> Reply {
        let revision = self.config_revision + 1;
        let mut events = vec![event(
            "",
            EventKind::ConfigApplied {
                revision,
                source: req.source,
                hash: req.hash,
                plan: steps.iter().map(Step::to_string).collect(),
            },
            &cause,
        )];
        for step in steps.iter().filter(|s| !matches!(s, Step::Same { .. })) {
            let change = EventKind::ConfigChanged {
                revision,
                change: step.to_string(),
            };
            events.push(event(step.name(), change, &cause));
        }
        events.extend(extra);
        // Pruned apps are deleted (by ids) now, with the revision, not after their stop.
        for step in &steps {
            if let Step::Remove { name } = step {
                let ids = self
                    .apps
                    .get(name)
                    .map(|a| a.ids.clone())
                    .unwrap_or_default();
                events.push(event(name, EventKind::AppDeleted { ids }, &cause));
            }
        }
        if let Err(e) = self.record(events) {
            return ready(internal(e));
        }
        self.config_revision = revision;
        let replaced: Picks = steps
            .iter()
            .filter(|s| matches!(s, Step::Change { .. } | Step::Remove { .. }))
            .map(|s| (s.name().to_string(), None))
            .collect();
        let stopped = self.fan_out(&replaced, Command::Stop, &cause);
        // Out of the registry now: no other request reaches an app being replaced.
        let retired: Vec<(String, Vec<u32>, Addr<crate::app::AppActor>)> = replaced
            .iter()
            .filter_map(|(name, _)| {
                let entry = self.apps.remove(name)?;
                Some((name.clone(), entry.ids, entry.addr))
            })
            .collect();
        let declared = req.apps;
        // Checked for cycles before anything changed.
        let waves = start_waves(&declared)
            .unwrap_or_else(|_| vec![declared.iter().map(|s| s.name.clone()).collect()]);
        let then = req.unchanged;
        let renamed = req.renamed;
        // A declared spec that watches watches again, even after `stop` paused it.
        for step in &steps {
            if let Step::Same { name } = step {
                self.set_watching(name, true);
            }
        }
        let unchanged: Vec<String> = steps
            .iter()
            .filter(|s| then != Unchanged::Keep && matches!(s, Step::Same { .. }))
            .map(|s| s.name().to_string())
            .collect();
        Box::pin(
            fut::wrap_future::<_, Self>(stopped).then(move |stopped, act: &mut Daemon, _| {
                // A changed app's instances were restarted with its new spec: counted, as
                // PM2 counts `restart --update-env`.
                let restarts: BTreeMap<u32, u32> =
                    stopped.iter().map(|p| (p.id, p.restarts + 1)).collect();
                let mut kept_ids = BTreeMap::new();
                for (name, ids, addr) in retired {
                    addr.do_send(Retire);
                    let removed = steps
                        .iter()
                        .any(|s| matches!(s, Step::Remove { name: n } if *n == name));
                    let new_name = renamed.iter().find(|(old, _)| *old == name);
                    if let Some((_, new)) = new_name {
                        kept_ids.insert(new.clone(), ids);
                    } else if !removed {
                        kept_ids.insert(name, ids);
                    }
                }
                for spec in declared {
                    if act.apps.contains_key(&spec.name) {
                        continue; // unchanged
                    }
                    let reuse = kept_ids.remove(&spec.name).unwrap_or_default();
                    if let Err(refused) = act.register_reusing(spec, &reuse, &restarts, &cause) {
                        crate::say!("pmx: up: {refused:?}");
                    }
                }
                let restarted = match then {
                    _ if unchanged.is_empty() => ready(Response::Processes(ProcessList::default())),
                    Unchanged::Reload => act.reload(
                        ReloadRequest {
                            targets: unchanged,
                            parallel: 1,
                        },
                        cause.clone(),
                    ),
                    _ => act.control(&unchanged, Command::Restart, cause.clone()),
                };
                restarted
                    .then(move |_, act: &mut Daemon, _| {
                        act.start_in_waves(waves.into(), BTreeMap::new(), cause)
                    })
                    .map(move |answer, _, _| match answer {
                        Response::Processes(_) => Response::Plan(PlanReport {
                            revision: Some(revision),
                            steps,
                            rules,
                        }),
                        other => other,
                    })
            }),
        )
    }
}
