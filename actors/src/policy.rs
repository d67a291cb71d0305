//! The policy runner: the loaded rules on their own thread, off the path that serves
//! commands. It runs each rule when its timer, cron tick or event comes, with the world as
//! the daemon sees it then; applies the rule's guards (cooldown, min/max for scale); sends
//! what is left to the daemon as actions caused by the rule; and journals failures, disabling
//! a rule after `DISABLE_AFTER` in a row.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{RuleList, RuleStatus, RulesScript};
use pmx_core::state::{Exit, Status};
use pmx_core::view::ProcessView;
use pmx_scripting::rules::{Action, AppState, Decision, Policies, RuleEvent, Trigger, World};
use pmx_storage::Journal;
use tokio::sync::oneshot;

use crate::clock::now_ms;
use crate::sampler::Sampler;

/// Failures in a row after which a rule is disabled.
const DISABLE_AFTER: u64 = 3;
/// How long a rule waits for the daemon's view of the apps.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// Every instance's view, for the rules.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Snapshot(pub Sender<Vec<ProcessView>>);

/// The runner's end of the handle's channel.
pub struct Inbox(Receiver<Input>);

enum Input {
    Load {
        rules: RulesScript,
        reply: Option<oneshot::Sender<Result<Vec<String>, String>>>,
    },
    Event(RuleEvent),
    Status(oneshot::Sender<RuleList>),
}

/// The handle apps and the daemon hold.
#[derive(Clone)]
pub struct PolicyHandle {
    tx: Sender<Input>,
    /// Whether a loaded rule listens to events: apps only send them then.
    listening: Arc<AtomicBool>,
}

/// What the runner needs from the rest of the daemon.
pub struct Wiring<A: Actor> {
    pub daemon: Addr<A>,
    pub sampler: Sampler,
    pub journal: Arc<dyn Journal>,
    pub commit: Arc<tokio::sync::Notify>,
}

impl PolicyHandle {
    /// The handle, and the runner to start once the daemon runs.
    pub fn new() -> (Self, Inbox) {
        let (tx, rx) = channel();
        let handle = PolicyHandle {
            tx,
            listening: Arc::default(),
        };
        (handle, Inbox(rx))
    }

    /// Replaces the loaded rules; the answer is their names, or why the script failed.
    pub fn load(&self, rules: RulesScript) -> oneshot::Receiver<Result<Vec<String>, String>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Input::Load {
            rules,
            reply: Some(tx),
        });
        rx
    }

    /// Loads the rules a previous daemon ran (a failure is logged).
    pub fn restore(&self, rules: RulesScript) {
        let _ = self.tx.send(Input::Load { rules, reply: None });
    }

    pub fn status(&self) -> oneshot::Receiver<RuleList> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Input::Status(tx));
        rx
    }

    fn event(&self, event: RuleEvent) {
        if self.listening.load(Ordering::Relaxed) {
            let _ = self.tx.send(Input::Event(event));
        }
    }

    pub fn exited(&self, app: &str, id: u32, exit: Exit) {
        self.event(RuleEvent {
            kind: "exit".into(),
            app: app.to_string(),
            instance: Some(id),
            code: exit.code,
            signal: exit.signal,
        });
    }

    pub fn became(&self, app: &str, id: u32, status: Status) {
        let kind = match status {
            Status::Online => "online",
            Status::Errored => "errored",
            Status::Stopped => "stopped",
            _ => return,
        };
        self.event(RuleEvent {
            kind: kind.into(),
            app: app.to_string(),
            instance: Some(id),
            code: None,
            signal: None,
        });
    }
}

/// Starts the runner thread; it ends once every `PolicyHandle` is dropped.
pub fn start<A>(
    handle: &PolicyHandle,
    Inbox(rx): Inbox,
    wiring: Wiring<A>,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    A: Actor<Context = Context<A>> + Handler<crate::decision::Decision> + Handler<Snapshot>,
{
    let listening = handle.listening.clone();
    std::thread::Builder::new()
        .name("pmx-rules".into())
        .spawn(move || {
            Runner {
                wiring,
                listening,
                loaded: None,
                errored_since: HashMap::new(),
            }
            .run(rx)
        })
}

/// One loaded rule's state.
struct Slot {
    next: Option<Instant>,
    status: RuleStatus,
    in_a_row: u64,
    acted_at: Option<Millis>,
}

struct Loaded {
    source: String,
    policies: Policies,
    slots: Vec<Slot>,
}

struct Runner<A: Actor> {
    wiring: Wiring<A>,
    listening: Arc<AtomicBool>,
    loaded: Option<Loaded>,
    /// When each app was first seen with every instance errored.
    errored_since: HashMap<String, Millis>,
}

/// When a trigger next fires after `now`, if it is timed.
fn next_due(trigger: &Trigger, now: Instant) -> Option<Instant> {
    match trigger {
        Trigger::Every(ms) => now.checked_add(Duration::from_millis(*ms)),
        Trigger::Cron { six, .. } => {
            let schedule = cron::Schedule::from_str(six).ok()?;
            let at = schedule.upcoming(chrono::Local).next()?;
            let wait = (at - chrono::Local::now()).to_std().unwrap_or_default();
            now.checked_add(wait)
        }
        Trigger::On { .. } => None,
    }
}

impl<A> Runner<A>
where
    A: Actor<Context = Context<A>> + Handler<crate::decision::Decision> + Handler<Snapshot>,
{
    fn run(mut self, rx: Receiver<Input>) {
        loop {
            let wait = self
                .loaded
                .as_ref()
                .and_then(|l| l.slots.iter().filter_map(|s| s.next).min())
                .map_or(Duration::from_secs(3600), |due| {
                    due.saturating_duration_since(Instant::now())
                });
            match rx.recv_timeout(wait) {
                Ok(Input::Load { rules, reply }) => {
                    let result = self.load(rules);
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    } else if let Err(e) = result {
                        crate::say!("pmx: the saved rules do not load: {e}");
                    }
                }
                Ok(Input::Event(event)) => self.on_event(event),
                Ok(Input::Status(reply)) => {
                    let _ = reply.send(self.status());
                }
                Err(RecvTimeoutError::Timeout) => self.run_due(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn load(&mut self, rules: RulesScript) -> Result<Vec<String>, String> {
        let RulesScript {
            source,
            script,
            vars,
        } = rules;
        let policies = Policies::load(&source, &script, &vars).map_err(|e| e.to_string())?;
        let now = Instant::now();
        let slots: Vec<Slot> = policies
            .specs()
            .map(|spec| Slot {
                next: next_due(&spec.trigger, now),
                status: RuleStatus {
                    name: spec.name.clone(),
                    trigger: spec.trigger.to_string(),
                    standard: spec.standard.clone(),
                    ..RuleStatus::default()
                },
                in_a_row: 0,
                acted_at: None,
            })
            .collect();
        let names = slots.iter().map(|s| s.status.name.clone()).collect();
        let listens = policies
            .specs()
            .any(|s| matches!(s.trigger, Trigger::On { .. }));
        self.listening.store(listens, Ordering::Relaxed);
        self.loaded = Some(Loaded {
            source,
            policies,
            slots,
        });
        Ok(names)
    }

    fn status(&self) -> RuleList {
        match &self.loaded {
            Some(l) => RuleList {
                source: Some(l.source.clone()),
                rules: l.slots.iter().map(|s| s.status.clone()).collect(),
            },
            None => RuleList::default(),
        }
    }

    fn run_due(&mut self) {
        let now = Instant::now();
        let Some(loaded) = &mut self.loaded else {
            return;
        };
        let mut due = Vec::new();
        let slots = loaded.slots.iter_mut();
        for (i, (spec, slot)) in loaded.policies.specs().zip(slots).enumerate() {
            if slot.next.is_some_and(|t| t <= now) {
                slot.next = next_due(&spec.trigger, now);
                due.push(i);
            }
        }
        if due.is_empty() {
            return;
        }
        let Some(world) = self.world() else { return };
        for i in due {
            self.run_rule(i, world.clone(), None);
        }
    }

    fn on_event(&mut self, event: RuleEvent) {
        let Some(loaded) = &self.loaded else { return };
        let matching: Vec<usize> = loaded
            .policies
            .specs()
            .enumerate()
            .filter(|(i, spec)| {
                !loaded.slots[*i].status.disabled
                    && matches!(&spec.trigger, Trigger::On { event: e, app }
                        if *e == event.kind && app.as_ref().is_none_or(|a| *a == event.app))
            })
            .map(|(i, _)| i)
            .collect();
        if matching.is_empty() {
            return;
        }
        let Some(world) = self.world() else { return };
        for i in matching {
            self.run_rule(i, world.clone(), Some(event.clone()));
        }
    }

    /// The apps as the daemon sees them now, with the sampler's averages.
    fn world(&mut self) -> Option<World> {
        let (tx, rx) = channel();
        self.wiring.daemon.do_send(Snapshot(tx));
        let views = rx.recv_timeout(VIEW_TIMEOUT).ok()?;
        let now = now_ms();
        let mut apps: std::collections::BTreeMap<String, AppState> = Default::default();
        // Per app: instances with a process, instances errored.
        let mut counts: HashMap<&str, (u32, usize)> = HashMap::new();
        for v in &views {
            let count = counts.entry(&v.name).or_default();
            count.0 += v.pid.is_some() as u32;
            count.1 += (v.status == Status::Errored) as usize;
            let app = apps.entry(v.name.clone()).or_insert_with(|| AppState {
                name: v.name.clone(),
                status: "online".into(),
                ..AppState::default()
            });
            app.ids.push(v.id);
            app.restarts += v.restarts;
            if v.status == Status::Online {
                app.online += 1;
            } else if app.status == "online" {
                app.status = v.status.as_str().to_string();
            }
            if v.pid.is_some() {
                app.cpu += v.usage.tree_cpu as f64;
                app.memory += v.usage.tree_memory;
                let up = v.started_at.map_or(0, |t| now.saturating_sub(t));
                app.uptime_ms = app.uptime_ms.max(up);
            }
        }
        for app in apps.values_mut() {
            let (running, errored) = counts.get(app.name.as_str()).copied().unwrap_or_default();
            if running > 0 {
                app.cpu /= running as f64;
            }
            if errored == app.ids.len() {
                let since = *self.errored_since.entry(app.name.clone()).or_insert(now);
                app.errored_since = Some(since);
            } else {
                self.errored_since.remove(&app.name);
            }
        }
        let sampler = self.wiring.sampler.clone();
        let growth = self.wiring.sampler.clone();
        Some(World {
            now,
            apps,
            averages: std::rc::Rc::new(move |ids, figure, window| {
                sampler.averages(ids, figure, window)
            }),
            growth: std::rc::Rc::new(move |ids, window| growth.growth(ids, window)),
        })
    }

    fn run_rule(&mut self, i: usize, world: World, event: Option<RuleEvent>) {
        let Some(loaded) = &mut self.loaded else {
            return;
        };
        let spec = match loaded.policies.specs().nth(i) {
            Some(s) => s.clone(),
            None => return,
        };
        let now = world.now;
        let instances: HashMap<String, u32> = world
            .apps
            .iter()
            .map(|(n, a)| (n.clone(), a.ids.len() as u32))
            .collect();
        let result = loaded.policies.run(i, world, event);
        let slot = &mut loaded.slots[i];
        slot.status.runs += 1;
        slot.status.last_run = Some(now);
        let outcome = match result {
            Ok(outcome) => {
                slot.in_a_row = 0;
                outcome
            }
            Err(error) => {
                slot.in_a_row += 1;
                slot.status.failures += 1;
                slot.status.last_error = Some(error.clone());
                let disabled = slot.in_a_row >= DISABLE_AFTER;
                if disabled {
                    slot.status.disabled = true;
                    slot.next = None;
                }
                self.journal(
                    "",
                    EventKind::RuleFailed {
                        rule: spec.name.clone(),
                        error,
                        disabled,
                    },
                    Cause::rule(&spec.name, "the rule failed"),
                );
                return;
            }
        };
        if outcome.decisions.is_empty() {
            return;
        }
        // Cooling down: what the rule decides now is not carried out.
        if slot
            .acted_at
            .is_some_and(|at| now < at.saturating_add(spec.cooldown_ms))
        {
            return;
        }
        let mut done = Vec::new();
        for decision in outcome.decisions {
            let Some(decision) = guard(decision, &spec, &instances) else {
                continue;
            };
            done.push(format!("{} {}", decision.action, decision.app));
            self.carry_out(&spec.name, decision);
        }
        let Some(loaded) = &mut self.loaded else {
            return;
        };
        let slot = &mut loaded.slots[i];
        if !done.is_empty() {
            slot.acted_at = Some(now);
            slot.status.last_fired = Some(now);
            slot.status.last_action = Some(done.join(", "));
        }
    }

    fn carry_out(&self, rule: &str, d: Decision) {
        let cause = Cause::Rule {
            rule: rule.to_string(),
            reason: d.reason,
            figures: d.figures,
        };
        self.wiring.daemon.do_send(crate::decision::Decision {
            app: d.app,
            action: d.action,
            seen: None,
            cause,
        });
    }

    fn journal(&self, app: &str, kind: EventKind, cause: Cause) {
        let event = NewEvent {
            app: app.to_string(),
            instance: None,
            kind,
            cause,
        };
        match self.wiring.journal.append(vec![event]) {
            Ok(_) => self.wiring.commit.notify_one(),
            Err(e) => crate::say!("pmx: journal append failed for a rule: {e}"),
        }
    }
}

/// The rule's min/max applied to a scale decision; `None` when nothing is left to do.
fn guard(
    mut d: Decision,
    spec: &pmx_scripting::rules::RuleSpec,
    instances: &HashMap<String, u32>,
) -> Option<Decision> {
    if let Action::Scale(n) = d.action {
        let lo = spec.min.unwrap_or(1).max(1);
        let hi = spec.max.unwrap_or(u32::MAX).max(lo);
        let n = n.clamp(lo, hi);
        if instances.get(&d.app) == Some(&n) {
            return None;
        }
        d.action = Action::Scale(n);
    }
    Some(d)
}
