//! `AppActor`: owns one app — its spec, its instances' state machines and their processes.
//! It feeds `core::state::step` with commands, exits and timer expiries, journals every
//! transition, and carries out the effects (spawn, signal, arm a timer). Nothing else touches
//! an app's processes.
//!
//! Here: the actor, its slots and the road from an input to its effects (`feed`, `execute`)
//! and to the answers of waiters. By concern: `launch` (a process started), `stop` (signals,
//! exits, drains), `views`, `reload`, `cluster` and `talk` (Node's cluster and IPC channel),
//! `health`, `policies`, `takeover` (a previous daemon's processes), `messages`, `shared`
//! (what every app actor shares with the daemon).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::instances::InstanceNumber;
use pmx_core::listen::ListenAddr;
use pmx_core::spec::{AppSpec, RestartPolicy};
use pmx_core::state::{self, Effect, Input, Instance, KillPolicy, Readiness, TimerKind};
use pmx_core::view::ProcessView;
use tokio::sync::oneshot;

use crate::clock::now_ms;
use crate::process::spawn;

mod cluster;
mod handover;
mod health;
mod launch;
mod messages;
mod policies;
mod reload;
mod shared;
mod stop;
mod takeover;
mod talk;
mod views;
pub use handover::{Adoptee, HandOver, Handed};
pub use health::probe;
pub use messages::{Control, Retire, SendSignal, Views};
pub use policies::{Rescale, Watching};
pub use reload::Reload;
pub use shared::Shared;
pub use takeover::Orphan;
pub use talk::install_shim;

/// How often a stopping instance checks whether its descendants are gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);

pub struct AppActor {
    /// Views share it: they leave the daemon without its captured environment (see
    /// `ProcessView::spec`).
    spec: Arc<AppSpec>,
    /// Each instance's log and pid file paths as views show them, made once (cleared when
    /// the spec changes): views are built for every `jlist`.
    shown_files: RefCell<HashMap<u32, ShownFiles>>,
    created_at: Millis,
    shared: Shared,
    slots: Vec<Slot>,
    waiters: Vec<Waiter>,
    /// The command line, resolved once (shown by `describe`, run by every spawn); empty
    /// while the spec does not resolve (its script is missing).
    command: Arc<[String]>,
    /// Counts spawns, to give each run a unique token.
    runs: u64,
    /// Orphans of a previous daemon being stopped; commands wait in `deferred` meanwhile.
    takeover: Option<takeover::Takeover>,
    deferred: Vec<(Control, oneshot::Sender<Vec<ProcessView>>)>,
    /// Orphans to take over once the actor runs.
    orphans: Vec<Orphan>,
    /// The first file change of a debounce in progress.
    watch_pending: Option<std::path::PathBuf>,
    /// `stop` paused watching (PM2): the spec's paths are kept for `restart --watch`.
    watch_paused: bool,
    /// The git version of the code (`vizion`), and when it was read: a spawn reads it again
    /// only after `VERSIONING_FRESH`, so a crash loop does not read `.git` at every respawn.
    versioning: Option<(Instant, Option<Arc<pmx_core::versioning::Versioning>>)>,
    /// When a launched instance counts as online (from the spec).
    readiness: Readiness,
    /// The sockets the app's instances inherit, bound at the first spawn.
    listeners: Vec<(ListenAddr, Arc<OwnedFd>)>,
    /// The sockets its cluster workers asked for.
    cluster_ports: cluster::ClusterPorts,
    /// Gives every slot a key of its own.
    keys: u64,
    /// A rolling reload in progress.
    rolling: Option<reload::Rolling>,
    /// Processes a previous daemon handed over, adopted at the first spawn of their slot.
    adoptees: Vec<handover::Adoptee>,
    /// Instances a previous daemon was waiting to restart: restarted when due.
    waiting: Vec<pmx_core::handoff::HandedWait>,
    /// Its processes were handed over (`pmx update`): it acts no more.
    frozen: bool,
    /// A `Settle` is queued: waiters are answered once the current message is handled.
    settling: bool,
    /// Failed health checks in a row.
    health_failures: u32,
    /// Actions policies took on each instance (by id), by policy name: for `/metrics`.
    policy_actions: HashMap<u32, BTreeMap<String, u64>>,
}

/// How long a read of the app's git version stays good for the next spawns.
const VERSIONING_FRESH: Duration = Duration::from_secs(10);

/// An instance's out log, error log and pid file paths, as views show them.
type ShownFiles = (Arc<str>, Arc<str>, Arc<str>);

/// One instance, or during a reload the process that is to replace one (`incoming`: it
/// shares the instance's id; commands and views see only the instance).
struct Slot {
    /// Callbacks (exits, timers, readiness) find their slot by key: ids are shared while an
    /// instance is being replaced.
    key: u64,
    id: u32,
    index: u32,
    machine: Instance,
    run: Option<Run>,
    /// A spawn asked for and not answered yet (the machine is launching, with no pid).
    launch: Option<launch::Launch>,
    incoming: bool,
    /// When the armed restart delay ends (handed over by `pmx update`).
    restart_due: Option<Millis>,
}

/// The live process of an instance.
struct Run {
    pid: u32,
    pidfd: Option<Arc<OwnedFd>>,
    token: String,
    /// How the process talks to the daemon (readiness, draining), when it may.
    talk: Option<talk::Talk>,
    /// A stop signal held back while the process drains its connections.
    held_signal: Option<(i32, Cause)>,
    /// What the run's agent reported (PM2's `axm_monitor`, `axm_options`); shared with the
    /// views, which are made often.
    agent: Option<Arc<pmx_core::agent::AgentReport>>,
    /// The `pmx set` values the run was started with.
    conf_env: Arc<BTreeMap<String, String>>,
    /// Everything pmx added to the run's environment.
    injected: Arc<BTreeMap<String, String>>,
}

/// A command waiting for its instances to settle.
struct Waiter {
    ids: Vec<u32>,
    tx: oneshot::Sender<Vec<ProcessView>>,
}

impl AppActor {
    pub fn new(
        spec: Arc<AppSpec>,
        instances: &[InstanceNumber],
        created_at: Millis,
        shared: Shared,
    ) -> Self {
        let command = spawn::resolve(&spec).unwrap_or_default();
        let slots = instances
            .iter()
            .enumerate()
            .map(|(key, i)| Slot {
                key: key as u64,
                id: i.id,
                index: i.index,
                machine: Instance::new(),
                run: None,
                launch: None,
                incoming: false,
                restart_due: None,
            })
            .collect();
        Self {
            readiness: spec.readiness(),
            listeners: Vec::new(),
            cluster_ports: cluster::ClusterPorts::default(),
            keys: instances.len() as u64,
            rolling: None,
            adoptees: Vec::new(),
            waiting: Vec::new(),
            frozen: false,
            settling: false,
            health_failures: 0,
            policy_actions: HashMap::new(),
            shown_files: RefCell::default(),
            spec,
            created_at,
            shared,
            slots,
            waiters: Vec::new(),
            command: command.into(),
            runs: 0,
            takeover: None,
            deferred: Vec::new(),
            orphans: Vec::new(),
            watch_pending: None,
            watch_paused: false,
            versioning: None,
        }
    }

    /// Restart counts carried over from the actor this one replaces (by instance id).
    pub fn with_restarts(mut self, restarts: &BTreeMap<u32, u32>) -> Self {
        for slot in &mut self.slots {
            if let Some(&n) = restarts.get(&slot.id) {
                slot.machine.restarts = n;
            }
        }
        self
    }

    /// Processes of a previous daemon's runs of this app that still run: they are stopped
    /// before anything else happens to the app.
    pub fn with_orphans(mut self, orphans: Vec<Orphan>) -> Self {
        self.orphans = orphans;
        self
    }

    /// Whether the app's command runs Node (its program, as resolved).
    fn runs_node(&self) -> bool {
        self.command
            .first()
            .is_some_and(|p| pmx_core::spec::is_node(p))
    }

    /// A Node app in cluster mode: its instances are cluster workers of the daemon.
    fn cluster_worker(&self) -> bool {
        self.spec.cluster_mode(&self.command)
    }

    /// When slot `i` counts as online. A cluster worker says so (Node's `online`, or, when
    /// it replaces an instance in a reload, listening), or `listen_timeout` passes, as under
    /// PM2 (see the `Heard` handler).
    fn effective_readiness(&self) -> Readiness {
        match self.readiness {
            Readiness::AtSpawn if self.cluster_worker() => Readiness::ReportedOrAfter {
                timeout_ms: self.spec.options.listen_timeout_ms,
            },
            other => other,
        }
    }

    fn kill_policy(&self) -> KillPolicy {
        KillPolicy {
            signal: self.spec.kill_signal,
            timeout_ms: self.spec.kill_timeout_ms,
        }
    }

    fn journal(&self, instance: Option<u32>, kind: EventKind, cause: Cause) {
        let event = NewEvent {
            app: self.spec.name.clone(),
            instance,
            kind,
            cause,
        };
        match self.shared.journal.append(vec![event]) {
            Ok(_) => self.shared.commit.notify_one(),
            Err(e) => crate::say!("pmx: journal append failed for {}: {e}", self.spec.name),
        }
    }

    /// Feeds one input to instance `i` and carries out what the machine decides.
    fn feed(&mut self, i: usize, input: Input, cause: Cause, ctx: &mut Context<Self>) {
        // Handed over to the next daemon: what happens to its processes is that one's.
        if self.frozen {
            return;
        }
        let kill = self.kill_policy();
        let ready = self.effective_readiness();
        if let (Input::Command(_), Cause::Rule { rule, .. }) = (&input, &cause) {
            let id = self.slots[i].id;
            let count = self.policy_actions.entry(id).or_default();
            *count.entry(rule.clone()).or_default() += 1;
        }
        let slot = &mut self.slots[i];
        // A process replacing an instance gets one chance: the reload fails if it exits.
        let once;
        let restart = if slot.incoming {
            once = RestartPolicy {
                autorestart: false,
                ..self.spec.restart.clone()
            };
            &once
        } else {
            &self.spec.restart
        };
        let step = state::step(&slot.machine, restart, kill, ready, input, now_ms());
        slot.machine = step.next;
        let id = slot.id;
        if let Some(t) = step.transition {
            self.shared.policy.became(&self.spec.name, id, t.to);
            self.journal(Some(id), EventKind::Transition(t.into()), cause.clone());
        }
        for effect in step.effects {
            self.execute(i, effect, cause.clone(), ctx);
        }
        self.settle(ctx);
    }

    fn execute(&mut self, i: usize, effect: Effect, cause: Cause, ctx: &mut Context<Self>) {
        match effect {
            Effect::Spawn => self.spawn(i, ctx),
            Effect::Signal(signal) => self.stop_signal(i, signal, cause, ctx),
            Effect::Kill => self.signal(i, 9, Cause::Policy),
            Effect::ArmTimer {
                kind,
                token,
                after_ms,
            } => {
                if kind == TimerKind::RestartDelay {
                    self.slots[i].restart_due = Some(now_ms() + after_ms);
                }
                let input = Input::Timer { kind, token };
                if after_ms == 0 {
                    self.feed(i, input, Cause::Policy, ctx);
                } else {
                    let key = self.slots[i].key;
                    ctx.run_later(Duration::from_millis(after_ms), move |act, ctx| {
                        let Some(i) = act.find(key) else { return };
                        act.feed(i, input, Cause::Policy, ctx);
                    });
                }
            }
        }
    }

    /// Where instance `id` is among the slots (not the process replacing it in a reload).
    fn position(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id && !s.incoming)
    }

    /// Where the slot with `key` is (callbacks hold keys: slots come and go).
    fn find(&self, key: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.key == key)
    }

    /// A new slot for instance `id`, stopped.
    fn new_slot(&mut self, id: u32, index: u32, incoming: bool) -> Slot {
        self.keys += 1;
        Slot {
            key: self.keys,
            id,
            index,
            machine: Instance::new(),
            run: None,
            launch: None,
            incoming,
            restart_due: None,
        }
    }

    /// The instances (all when `ids` is `None`), never a process replacing one.
    fn selected(&self, ids: &Option<Vec<u32>>) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                !self.slots[i].incoming
                    && ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&self.slots[i].id))
            })
            .collect()
    }

    /// Asks for the waiters to be answered (and a reload moved on) once the current message
    /// is handled: every change of an instance (`feed`) and every new wait asks for it, and
    /// `Settle`'s handler is the one place it happens.
    fn settle(&mut self, ctx: &mut Context<Self>) {
        if !self.settling {
            self.settling = true;
            ctx.notify(messages::Settle);
        }
    }

    /// Waits until instances `ids` have all settled; `tx` gets their views then.
    fn wait_for(
        &mut self,
        ids: Vec<u32>,
        tx: oneshot::Sender<Vec<ProcessView>>,
        ctx: &mut Context<Self>,
    ) {
        self.waiters.push(Waiter { ids, tx });
        self.settle(ctx);
    }

    /// Moves a reload on, then answers every waiter whose instances have all settled.
    fn answer_waiters(&mut self, ctx: &mut Context<Self>) {
        self.advance_reload(ctx);
        let mut i = 0;
        while i < self.waiters.len() {
            let ids = Some(self.waiters[i].ids.clone());
            let settled = self
                .selected(&ids)
                .iter()
                .all(|&s| self.slots[s].machine.status.is_settled());
            if settled {
                let waiter = self.waiters.swap_remove(i);
                let views = self.views(&ids);
                let _ = waiter.tx.send(views);
            } else {
                i += 1;
            }
        }
    }
}
