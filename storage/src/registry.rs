//! The registry of desired state (which apps exist, their specs and ids, whether they should
//! run) as a fold of the journal: replaying the same events always gives the same registry.

use std::collections::BTreeMap;

use pmx_core::Millis;
use pmx_core::event::{Event, EventKind};
use pmx_core::spec::AppSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredApp {
    pub spec: AppSpec,
    /// pm_ids of the instances, in instance order.
    pub ids: Vec<u32>,
    /// Their `NODE_APP_INSTANCE`s, in the order of `ids`; empty: their positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<u32>,
    pub desired: Desired,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Registry {
    pub apps: BTreeMap<String, RegisteredApp>,
    /// Next free pm_id: ids are never reused, so history stays unambiguous.
    pub next_id: u32,
    /// Processes the journal last saw alive, by instance id: spawned, not yet seen exiting.
    /// After a daemon crash they may still run.
    pub live: BTreeMap<u32, LiveRun>,
    /// Whether the last daemon started and never recorded a clean stop: it crashed, and
    /// processes it started may still run (false for an empty journal).
    pub crashed: bool,
    /// The last `pmx save` checkpoint: what `pmx resurrect` brings back.
    pub saved: Option<Vec<AppSpec>>,
    /// The last config revision `pmx up` applied.
    pub config_revision: u64,
    /// The rules `pmx up` last loaded.
    pub rules: Option<pmx_core::protocol::RulesScript>,
}

/// A process the journal saw spawned and not exited, with what identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRun {
    pub pid: u32,
    pub start_time: Option<u64>,
    pub boot: Option<String>,
    pub token: Option<String>,
}

impl Registry {
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut registry = Registry::default();
        for event in events {
            registry.apply(event);
        }
        registry
    }

    /// Applies one event. Events that do not concern desired state are ignored.
    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::AppCreated { spec, ids } => {
                if let Some(max) = ids.iter().max() {
                    self.next_id = self.next_id.max(max + 1);
                }
                self.apps.insert(
                    event.app.clone(),
                    RegisteredApp {
                        spec: (**spec).clone(),
                        ids: ids.clone(),
                        indexes: Vec::new(),
                        desired: Desired::Stopped,
                        created_at: event.at,
                    },
                );
            }
            EventKind::AppDeleted { ids } => {
                // Only the app the delete was decided for: ids are never reused.
                let same_app = self
                    .apps
                    .get(&event.app)
                    .is_some_and(|app| ids.is_empty() || app.ids.iter().any(|id| ids.contains(id)));
                if same_app && let Some(app) = self.apps.remove(&event.app) {
                    for id in app.ids {
                        self.live.remove(&id);
                    }
                }
            }
            EventKind::Spawned {
                pid,
                start_time,
                boot,
                token,
            } => {
                if let Some(id) = event.instance {
                    let run = LiveRun {
                        pid: *pid,
                        start_time: *start_time,
                        boot: boot.clone(),
                        token: token.clone(),
                    };
                    self.live.insert(id, run);
                }
            }
            EventKind::Exited { pid, .. } | EventKind::OrphanStopped { pid, .. } => {
                if let Some(id) = event.instance
                    && self.live.get(&id).is_some_and(|run| run.pid == *pid)
                {
                    self.live.remove(&id);
                }
            }
            EventKind::Command { verb } => {
                let desired = match verb.as_str() {
                    "start" | "restart" | "reload" => Desired::Running,
                    "stop" => Desired::Stopped,
                    _ => return,
                };
                if let Some(app) = self.apps.get_mut(&event.app) {
                    app.desired = desired;
                }
            }
            EventKind::Scaled {
                to, ids, indexes, ..
            } => {
                if let Some(max) = ids.iter().max() {
                    self.next_id = self.next_id.max(max + 1);
                }
                if let Some(app) = self.apps.get_mut(&event.app) {
                    for gone in app.ids.iter().filter(|id| !ids.contains(id)) {
                        self.live.remove(gone);
                    }
                    app.ids = ids.clone();
                    app.indexes = indexes.clone();
                    app.spec.instances = *to;
                }
            }
            EventKind::RulesLoaded {
                source,
                script,
                vars,
                ..
            } => {
                self.rules = Some(pmx_core::protocol::RulesScript {
                    source: source.clone(),
                    script: script.clone(),
                    vars: vars.clone(),
                });
            }
            EventKind::DaemonStarted { .. } => self.crashed = true,
            EventKind::DaemonStopped { .. } => self.crashed = false,
            EventKind::Saved { apps } => self.saved = Some(apps.clone()),
            EventKind::ConfigApplied { revision, .. } => {
                self.config_revision = self.config_revision.max(*revision)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmx_core::event::Cause;
    use proptest::prelude::*;

    fn event(seq: u64, app: &str, kind: EventKind) -> Event {
        Event {
            v: 1,
            seq,
            at: seq,
            app: app.into(),
            instance: None,
            kind,
            cause: Cause::Boot,
        }
    }

    fn created(seq: u64, app: &str, ids: Vec<u32>) -> Event {
        let spec = AppSpec {
            name: app.into(),
            script: "/a.js".into(),
            ..AppSpec::default()
        };
        event(
            seq,
            app,
            EventKind::AppCreated {
                spec: Box::new(spec),
                ids,
            },
        )
    }

    fn verb(seq: u64, app: &str, verb: &str) -> Event {
        event(seq, app, EventKind::Command { verb: verb.into() })
    }

    #[test]
    fn fold_tracks_apps_ids_and_desired_state() {
        let events = vec![
            created(1, "api", vec![0, 1]),
            verb(2, "api", "start"),
            created(3, "web", vec![2]),
            verb(4, "web", "start"),
            verb(5, "web", "stop"),
            verb(6, "api", "shutdown"),
            created(7, "tmp", vec![3]),
            event(8, "tmp", EventKind::AppDeleted { ids: vec![3] }),
        ];
        let r = Registry::fold(&events);
        assert_eq!(r.apps.len(), 2);
        assert_eq!(
            r.apps["api"].desired,
            Desired::Running,
            "a daemon's shutdown keeps desired state"
        );
        assert_eq!(r.apps["api"].ids, vec![0, 1]);
        assert_eq!(r.apps["web"].desired, Desired::Stopped);
        assert_eq!(r.next_id, 4, "ids of deleted apps are not reused");
    }

    #[test]
    fn a_delete_removes_only_the_app_it_was_decided_for() {
        let events = vec![
            created(1, "svc", vec![0]),
            // The delete of ids [0] was decided; a new svc came before it was replayed.
            created(2, "svc", vec![1]),
            event(3, "svc", EventKind::AppDeleted { ids: vec![0] }),
        ];
        let r = Registry::fold(&events);
        assert_eq!(r.apps["svc"].ids, vec![1], "the later svc stays");
        let r = Registry::fold(&[
            created(1, "old", vec![0]),
            event(2, "old", EventKind::AppDeleted { ids: Vec::new() }),
        ]);
        assert!(r.apps.is_empty(), "a record without ids deletes by name");
    }

    #[test]
    fn fold_knows_whether_the_last_daemon_crashed() {
        let started = |seq| {
            event(
                seq,
                "",
                EventKind::DaemonStarted {
                    pid: 1,
                    version: "0".into(),
                },
            )
        };
        let stopped = |seq| event(seq, "", EventKind::DaemonStopped { pid: 1 });
        assert!(
            !Registry::fold(&[]).crashed,
            "an empty journal had no daemon"
        );
        assert!(Registry::fold(&[started(1)]).crashed);
        assert!(!Registry::fold(&[started(1), stopped(2)]).crashed);
        assert!(Registry::fold(&[started(1), stopped(2), started(3)]).crashed);
    }

    fn instance_event(seq: u64, app: &str, id: u32, kind: EventKind) -> Event {
        Event {
            instance: Some(id),
            ..event(seq, app, kind)
        }
    }

    fn spawned(pid: u32) -> EventKind {
        EventKind::Spawned {
            pid,
            start_time: Some(42),
            boot: None,
            token: None,
        }
    }

    #[test]
    fn fold_tracks_processes_still_live() {
        let exit = pmx_core::state::Exit {
            code: Some(0),
            signal: None,
        };
        let events = vec![
            created(1, "api", vec![0, 1]),
            instance_event(2, "api", 0, spawned(100)),
            instance_event(3, "api", 1, spawned(101)),
            instance_event(
                4,
                "api",
                0,
                EventKind::Exited {
                    pid: 100,
                    exit,
                    uptime_ms: 5,
                },
            ),
            instance_event(5, "api", 0, spawned(102)),
            // A stale exit of an older process does not clear the newer one.
            instance_event(
                6,
                "api",
                0,
                EventKind::Exited {
                    pid: 100,
                    exit,
                    uptime_ms: 5,
                },
            ),
        ];
        let r = Registry::fold(&events);
        assert_eq!(r.live.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(r.live[&0].pid, 102);
        assert_eq!(r.live[&0].start_time, Some(42));
        let mut deleted = r.clone();
        deleted.apply(&event(7, "api", EventKind::AppDeleted { ids: Vec::new() }));
        assert!(deleted.live.is_empty());
    }

    proptest! {
        /// Replaying a journal in two parts gives the same registry as replaying it whole.
        #[test]
        fn fold_is_incremental(ops in prop::collection::vec((0usize..3, 0usize..4), 0..40), cut in 0usize..40) {
            let names = ["a", "b", "c"];
            let verbs = ["create", "start", "stop", "delete"];
            let mut next = 0u32;
            let events: Vec<Event> = ops.iter().enumerate().map(|(i, &(n, v))| {
                let seq = i as u64 + 1;
                match verbs[v] {
                    "create" => { next += 1; created(seq, names[n], vec![next]) }
                    "delete" => event(seq, names[n], EventKind::AppDeleted { ids: Vec::new() }),
                    other => verb(seq, names[n], other),
                }
            }).collect();
            let whole = Registry::fold(&events);
            let cut = cut.min(events.len());
            let mut parts = Registry::fold(&events[..cut]);
            for e in &events[cut..] { parts.apply(e); }
            prop_assert_eq!(whole, parts);
        }
    }
}
