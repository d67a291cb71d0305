//! The `Daemon` actor: the registry of app actors by name, the router of requests (one file
//! per verb family, dispatched by one `match`), and the journal writer for commands. On boot
//! it folds the journal into the registry and brings back every app that should run.

mod control;
mod depends;
mod logs;
mod policy;
mod query;
mod readers;
mod reload;
mod revise;
mod save;
mod start;
mod targets;
mod up;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{FailureKind, RecentList, Request, Response};
use pmx_core::spec::AppSpec;
use pmx_core::state::Command;
use pmx_storage::{Desired, Registry, Snapshot, load_registry};

use crate::app::{Adoptee, AppActor, Control, Orphan, Shared};
use crate::clock::now_ms;
use crate::process::{family, identity};

pub struct Daemon {
    apps: BTreeMap<String, AppEntry>,
    /// Next free pm_id; ids are never reused.
    next_id: u32,
    shared: Shared,
    started_at: Millis,
    /// The last config revision `pmx up` applied.
    config_revision: u64,
    /// The captured environment of the app registered last: apps started by one command
    /// share one copy of it (500 apps of an ecosystem file carry the same environment).
    last_env: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    /// A `pmx update` is under way (from its check to the exec).
    updating: bool,
}

struct AppEntry {
    addr: Addr<AppActor>,
    ids: Vec<u32>,
    /// Their `NODE_APP_INSTANCE`s, in the order of `ids` (empty: their positions).
    indexes: Vec<u32>,
    /// What the app was registered with (`save` checkpoints it); the actor shares it.
    spec: Arc<AppSpec>,
    /// `stop` paused the watching of the spec's paths (the actor knows it too).
    watch_paused: bool,
}

/// A request from a client whose socket peer has this uid.
#[derive(Message)]
#[rtype(result = "Response")]
pub struct Handle {
    pub request: Request,
    pub uid: u32,
    /// Where the request came from, when not the socket (`dashboard from 127.0.0.1`): the
    /// journal names it in the cause.
    pub via: Option<String>,
}

/// What a previous daemon handed over (`pmx update`).
pub struct Adoption {
    pub from: String,
    pub uid: u32,
    pub runs: Vec<Adoptee>,
    pub waiting: Vec<pmx_core::handoff::HandedWait>,
    /// The sockets each app's cluster workers share, by address (in `listeners`).
    pub cluster_ports: Vec<pmx_core::handoff::HandedClusterPort>,
    /// The sockets held for `listen` apps, by address: each goes to the actor of its app,
    /// the others close once boot is done.
    pub listeners: Vec<(String, Arc<std::os::fd::OwnedFd>)>,
}

/// Stop every app without changing what should run, then answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

type Reply = ResponseActFuture<Daemon, Response>;

fn ready(response: Response) -> Reply {
    Box::pin(fut::ready(response))
}

fn internal(e: impl std::fmt::Display) -> Response {
    Response::failure(FailureKind::Internal, e.to_string())
}

impl Daemon {
    /// Builds the daemon from the journal: every registered app gets its actor back, with
    /// the processes a previous daemon handed over (`pmx update`) to adopt. Returns the
    /// registry it folded too, as a snapshot for the housekeeping to store.
    pub fn boot(
        shared: Shared,
        adoption: Option<Adoption>,
    ) -> Result<(Self, Snapshot), pmx_storage::JournalError> {
        let (snapshot, skipped) = load_registry(shared.journal.as_ref())?;
        if skipped > 0 {
            crate::say!("pmx: skipped {skipped} journal records that could not be read");
        }
        let registry = snapshot.registry.clone();
        let mut daemon = Daemon {
            apps: BTreeMap::new(),
            // As PM2 does, a daemon with no app numbers from 0 (after `kill`, or `delete all`).
            next_id: if registry.apps.is_empty() {
                0
            } else {
                registry.next_id
            },
            shared,
            started_at: now_ms(),
            config_revision: registry.config_revision,
            last_env: Default::default(),
            updating: false,
        };
        daemon.record(vec![NewEvent {
            app: String::new(),
            instance: None,
            kind: EventKind::DaemonStarted {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            cause: Cause::Boot,
        }])?;
        if let Some(rules) = registry.rules.clone() {
            daemon.shared.policy.restore(rules);
        }
        let home = daemon.shared.paths.home().display().to_string();
        // After an update the journal was flushed before the exec: every live process is in
        // it, so no scan of the machine's processes is needed.
        let scan = adoption.is_none();
        let mut orphans = orphans_of(&registry, &home, daemon.shared.boot.as_deref(), scan);
        let (mut adoptees, mut waiting, sockets, cluster_ports, upgraded) = match adoption {
            Some(a) => (
                a.runs,
                a.waiting,
                a.listeners,
                a.cluster_ports,
                Some((a.from, a.uid)),
            ),
            None => (Vec::new(), Vec::new(), Vec::new(), Vec::new(), None),
        };
        for (name, mut app) in registry.apps {
            // A handed-over process is adopted, not taken over, while it is still itself and
            // its app is to run (the start at boot is where it is adopted).
            let running = app.desired == Desired::Running;
            let adopted: Vec<Adoptee> = app
                .ids
                .iter()
                .filter(|_| running)
                .filter_map(|&id| {
                    let at = adoptees
                        .iter()
                        .position(|a| a.run.id == id && a.run.app == name)?;
                    let adoptee = adoptees.swap_remove(at);
                    let run = &adoptee.run;
                    identity::own_child(run.pid, run.start_time).then(|| {
                        orphans.remove(&id);
                        adoptee
                    })
                })
                .collect();
            let mine = app.ids.iter().filter_map(|id| orphans.remove(id)).collect();
            if let Some((from, uid)) = &upgraded {
                daemon.note(
                    &name,
                    format!(
                        "daemon upgraded {from} → {} by uid {uid} ({} processes adopted)",
                        env!("CARGO_PKG_VERSION"),
                        adopted.len()
                    ),
                    Cause::User {
                        command: "update".into(),
                        uid: *uid,
                    },
                );
            }
            daemon.share_env(&mut app.spec);
            let spec = Arc::new(app.spec);
            let actor = AppActor::new(
                spec.clone(),
                &pmx_core::instances::paired(&app.ids, &app.indexes),
                app.created_at,
                daemon.shared.clone(),
            )
            .with_orphans(mine)
            .with_listeners(&sockets)
            .with_cluster_ports(&sockets, &cluster_ports)
            .with_adoptees(adopted)
            .with_waiting(waiting.extract_if(.., |w| w.app == name).collect());
            let addr = actor.start();
            if app.desired == Desired::Running {
                addr.do_send(Control {
                    command: Command::Start,
                    ids: None,
                    cause: Cause::Boot,
                    seen: None,
                });
            }
            daemon.apps.insert(
                name,
                AppEntry {
                    addr,
                    ids: app.ids,
                    indexes: app.indexes,
                    spec,
                    watch_paused: false,
                },
            );
        }
        // Processes of apps deleted while the previous daemon died: no actor owns them.
        for orphan in orphans.into_values() {
            let pids: Vec<u32> = orphan.processes.iter().map(|&(p, _)| p).collect();
            family::signal_all(&pids, 9);
        }
        Ok((daemon, snapshot))
    }

    /// Journals events and makes them durable before the command is acted on.
    fn record(&self, events: Vec<NewEvent>) -> Result<(), pmx_storage::JournalError> {
        self.shared.journal.append(events)?;
        self.shared.journal.flush()
    }

    /// Journals a note about `app` (group-committed).
    fn note(&self, app: &str, text: String, cause: Cause) {
        let note = NewEvent {
            app: app.to_string(),
            instance: None,
            kind: EventKind::Note { text },
            cause,
        };
        match self.shared.journal.append(vec![note]) {
            Ok(_) => self.shared.commit.notify_one(),
            Err(e) => crate::say!("pmx: journal append failed for a note on {app}: {e}"),
        }
    }

    /// Journals, durably, that `verb` was asked of each picked app: before it is carried out.
    fn record_commands(
        &self,
        picks: &targets::Picks,
        verb: &str,
        cause: &Cause,
    ) -> Result<(), pmx_storage::JournalError> {
        let events = picks.iter().map(|(name, _)| NewEvent {
            app: name.clone(),
            instance: None,
            kind: EventKind::Command {
                verb: verb.to_string(),
            },
            cause: cause.clone(),
        });
        self.record(events.collect())
    }
}

/// How long after the first scan for orphans the second one looks (see `orphans_of`).
const RESCAN_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// After a crash of the previous daemon: every process still running that one of this home's
/// daemons started (found by its run token, so even a spawn whose event was not yet
/// committed), plus every journaled live process that still runs (same pid and start time).
/// After a clean shutdown nothing is scanned.
fn orphans_of(
    registry: &Registry,
    home: &str,
    boot: Option<&str>,
    scan: bool,
) -> HashMap<u32, Orphan> {
    if !registry.crashed {
        return HashMap::new();
    }
    let mut found: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for look in 0..if scan { 2 } else { 0 } {
        // A child the dead daemon forked but had not yet exec'd shows the daemon's
        // environment, without its token; it is an app a moment later. A second look finds it.
        if look > 0 {
            std::thread::sleep(RESCAN_AFTER);
        }
        for (id, processes) in identity::tagged_processes(home) {
            let known = found.entry(id).or_default();
            for process in processes {
                if !known.contains(&process) {
                    known.push(process);
                }
            }
        }
    }
    for (&id, run) in &registry.live {
        let processes = found.entry(id).or_default();
        if identity::still_runs(run, boot)
            && let Some(start) = run.start_time
            && !processes.iter().any(|&(p, _)| p == run.pid)
        {
            processes.push((run.pid, start));
        }
    }
    let journaled = |id: u32| registry.live.get(&id).map_or(0, |run| run.pid);
    found
        .into_iter()
        .map(|(id, processes)| {
            (
                id,
                Orphan {
                    id,
                    pid: journaled(id),
                    processes,
                },
            )
        })
        .collect()
}

impl Actor for Daemon {
    type Context = Context<Self>;
}

impl Handler<Handle> for Daemon {
    type Result = Reply;

    fn handle(&mut self, msg: Handle, _: &mut Context<Self>) -> Reply {
        let uid = msg.uid;
        let via = msg.via;
        let user = |command: &str| Cause::User {
            command: match &via {
                Some(via) => format!("{command} via {via}"),
                None => command.to_string(),
            },
            uid,
        };
        match msg.request {
            Request::Start(req) => self.start(req.spec, user("start")),
            Request::Stop(t) => self.stop_checked(t.targets, t.force, user("stop")),
            Request::Restart(t) => self.control(&t.targets, Command::Restart, user("restart")),
            Request::Reset(t) => self.control(&t.targets, Command::Reset, user("reset")),
            Request::Delete(t) => self.delete(&t.targets, user("delete")),
            Request::SendSignal(req) => self.send_signal(req, user("sendSignal")),
            Request::Kill => self.kill(user("kill")),
            Request::List => self.list(None),
            Request::Jlist => self.jlist(),
            Request::Describe(t) => self.list(Some(&t.targets)),
            Request::History(req) => self.history(req),
            Request::Ping => ready(self.pong()),
            Request::Save => self.save(user("save")),
            Request::Resurrect => self.resurrect(user("resurrect")),
            Request::Env(t) => ready(self.env(&t.targets, uid)),
            Request::Up(req) => self.up(*req, user("up")),
            Request::RejectConfig(r) => ready(self.reject_config(r, user("up"))),
            Request::Revise(req) => self.revise(req, user("restart")),
            Request::Rollback(req) => self.rollback(req, user("rollback")),
            Request::Logs(req) => ready(self.logs(&req.targets)),
            Request::Flush(t) => self.flush_logs(&t.targets),
            Request::ReloadLogs => self.reload_logs(),
            Request::Scale(req) => self.scale(req, user("scale")),
            Request::Rules => self.rules(),
            Request::Reload(req) => self.reload(req, user("reload")),
            // PM2's smart start: `start api` restarts api when it runs.
            Request::StartApps(t) => {
                self.control(&t.targets, Command::StartOrRestart, user("start"))
            }
            Request::Update(req) => self.update(req, uid),
            Request::Recent => {
                let instances = self.shared.sampler.recent();
                ready(Response::Recent(RecentList { instances }))
            }
            Request::Monit(_) => ready(Response::failure(
                FailureKind::Invalid,
                "monit is a stream: the socket server answers it",
            )),
        }
    }
}

impl Handler<Shutdown> for Daemon {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.shut_down(Cause::Shutdown).map(|_, _, _| ()))
    }
}

#[cfg(test)]
mod tests;
