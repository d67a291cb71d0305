//! What a rule sees and says: `ctx` (the world, the event, `note`), `ctx.app(name)` (an
//! app's figures, its actions). Every figure a rule reads is remembered, so each decision
//! carries the figures that led to it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use pmx_core::Millis;
use pmx_core::metrics::Figure;
use pmx_core::units::{parse_duration_ms, parse_rate_per_hour, parse_size_bytes};
use rhai::{Dynamic, Engine, EvalAltResult, Map};

/// An app as rules see it, taken when the rule runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppState {
    pub name: String,
    pub ids: Vec<u32>,
    /// Instances online.
    pub online: u32,
    /// `online` when every instance is, else the first one's status that is not.
    pub status: String,
    pub restarts: u32,
    /// Of the oldest running instance.
    pub uptime_ms: Millis,
    /// Since when every instance is errored, if they all are.
    pub errored_since: Option<Millis>,
    /// Mean CPU % per running instance (process tree), latest sample.
    pub cpu: f64,
    /// Bytes of every instance's tree, latest sample.
    pub memory: u64,
}

/// Averages over a window for some instances: one value per instance with samples.
pub type Averager = Rc<dyn Fn(&[u32], Figure, Millis) -> Vec<f64>>;
/// Memory growth in bytes per hour over a window, per instance with enough samples.
pub type Trend = Rc<dyn Fn(&[u32], Millis) -> Vec<f64>>;

/// Everything a rule may read.
#[derive(Clone)]
pub struct World {
    pub now: Millis,
    pub apps: BTreeMap<String, AppState>,
    pub averages: Averager,
    pub growth: Trend,
}

/// The event an `on` rule runs for.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEvent {
    pub kind: String,
    pub app: String,
    pub instance: Option<u32>,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Restart,
    Reload,
    Stop,
    Start,
    Scale(u32),
    Signal(String),
    Note(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Restart => write!(f, "restart"),
            Action::Reload => write!(f, "reload"),
            Action::Stop => write!(f, "stop"),
            Action::Start => write!(f, "start"),
            Action::Scale(n) => write!(f, "scale to {n}"),
            Action::Signal(s) => write!(f, "signal {s}"),
            Action::Note(text) => write!(f, "note {text:?}"),
        }
    }
}

/// One thing a rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub app: String,
    pub action: Action,
    pub reason: String,
    /// The figures the rule had read when it decided (`api.cpu_avg(1m)=85.3`).
    pub figures: Vec<String>,
}

/// What one run of a rule decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub decisions: Vec<Decision>,
}

struct Run {
    world: World,
    event: Option<RuleEvent>,
    figures: RefCell<Vec<String>>,
    decisions: RefCell<Vec<Decision>>,
}

/// `ctx`: the handle a rule's function gets.
#[derive(Clone)]
pub struct Ctx(Rc<Run>);

/// `ctx.app(name)`.
#[derive(Clone)]
pub struct AppRef {
    run: Rc<Run>,
    state: AppState,
}

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn err<T>(message: String) -> Fallible<T> {
    Err(message.into())
}

impl Ctx {
    pub fn new(world: World, event: Option<RuleEvent>) -> Self {
        Ctx(Rc::new(Run {
            world,
            event,
            figures: RefCell::default(),
            decisions: RefCell::default(),
        }))
    }

    pub fn outcome(&self) -> Outcome {
        Outcome {
            decisions: self.0.decisions.borrow().clone(),
        }
    }

    fn app(&mut self, name: &str) -> Fallible<AppRef> {
        match self.0.world.apps.get(name) {
            Some(state) => Ok(AppRef {
                run: self.0.clone(),
                state: state.clone(),
            }),
            None => err(format!("no app named `{name}`")),
        }
    }

    fn event(&mut self) -> Dynamic {
        let Some(e) = &self.0.event else {
            return Dynamic::UNIT;
        };
        let mut map = Map::new();
        let opt = |v: Option<i32>| v.map_or(Dynamic::UNIT, |v| Dynamic::from(v as i64));
        map.insert("type".into(), e.kind.clone().into());
        map.insert("app".into(), e.app.clone().into());
        map.insert("instance".into(), opt(e.instance.map(|i| i as i32)));
        map.insert("code".into(), opt(e.code));
        map.insert("signal".into(), opt(e.signal));
        map.into()
    }

    fn note(&mut self, text: &str) {
        let app = self
            .0
            .event
            .as_ref()
            .map(|e| e.app.clone())
            .unwrap_or_default();
        // The text is the event: the cause needs no reason besides the rule.
        self.0
            .decide(app, Action::Note(text.to_string()), String::new());
    }
}

impl Run {
    fn decide(&self, app: String, action: Action, reason: String) {
        let figures = self.figures.borrow().clone();
        self.decisions.borrow_mut().push(Decision {
            app,
            action,
            reason,
            figures,
        });
    }
}

impl AppRef {
    /// Reads a figure and remembers it for the decisions that follow.
    fn read<T: std::fmt::Display>(&self, what: &str, value: T) -> T {
        let line = format!("{}.{what}={value}", self.state.name);
        let mut figures = self.run.figures.borrow_mut();
        if !figures.contains(&line) {
            figures.push(line);
        }
        value
    }

    fn window(window: &str) -> Fallible<Millis> {
        parse_duration_ms(window).or_else(|e| err(e.to_string()))
    }

    fn average(&self, figure: Figure, window: &str) -> Fallible<Vec<f64>> {
        let ms = Self::window(window)?;
        Ok((self.run.world.averages)(&self.state.ids, figure, ms))
    }

    fn cpu_avg(&mut self, window: &str) -> Fallible<f64> {
        let values = self.average(Figure::Cpu, window)?;
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        Ok(self.read(&format!("cpu_avg({window})"), round1(mean)))
    }

    fn memory_avg(&mut self, window: &str) -> Fallible<i64> {
        let total: f64 = self.average(Figure::Memory, window)?.iter().sum();
        Ok(self.read(&format!("memory_avg({window})"), total as i64))
    }

    fn memory_growth(&mut self, window: &str) -> Fallible<f64> {
        let ms = Self::window(window)?;
        let fastest = (self.run.world.growth)(&self.state.ids, ms)
            .into_iter()
            .fold(0.0_f64, f64::max);
        Ok(self.read(&format!("memory_growth({window})"), fastest.round()))
    }

    fn act(&mut self, action: Action, reason: &str) {
        self.run
            .decide(self.state.name.clone(), action, reason.to_string());
    }

    fn scale(&mut self, n: i64, reason: &str) -> Fallible<()> {
        let n =
            u32::try_from(n).or_else(|_| err(format!("scale: {n} is not an instance count")))?;
        self.act(Action::Scale(n), reason);
        Ok(())
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Unit helpers, for the standard library and scripts alike.
pub fn register_units(engine: &mut Engine) {
    engine.register_fn("bytes", |s: &str| -> Fallible<i64> {
        parse_size_bytes(s)
            .map(|b| b as i64)
            .or_else(|e| err(e.to_string()))
    });
    engine.register_fn("ms", |s: &str| -> Fallible<i64> {
        parse_duration_ms(s)
            .map(|b| b as i64)
            .or_else(|e| err(e.to_string()))
    });
    engine.register_fn("per_hour", |s: &str| -> Fallible<i64> {
        parse_rate_per_hour(s)
            .map(|b| b as i64)
            .or_else(|e| err(e.to_string()))
    });
}

/// The types and functions a rule's function may use.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Ctx>("Ctx");
    engine.register_fn("app", Ctx::app);
    engine.register_fn("note", Ctx::note);
    engine.register_get("event", Ctx::event);
    engine.register_get("now", |c: &mut Ctx| c.0.world.now as i64);
    engine.register_fn("apps", |c: &mut Ctx| -> rhai::Array {
        c.0.world.apps.keys().map(|k| k.clone().into()).collect()
    });

    engine.register_type_with_name::<AppRef>("App");
    engine.register_get("name", |a: &mut AppRef| a.state.name.clone());
    engine.register_get("instances", |a: &mut AppRef| {
        a.read("instances", a.state.ids.len() as i64)
    });
    engine.register_get("online", |a: &mut AppRef| {
        a.read("online", a.state.online as i64)
    });
    engine.register_get("status", |a: &mut AppRef| {
        a.read("status", a.state.status.clone())
    });
    engine.register_get("restarts", |a: &mut AppRef| {
        a.read("restarts", a.state.restarts as i64)
    });
    engine.register_get("uptime", |a: &mut AppRef| {
        a.read("uptime", (a.state.uptime_ms / 1000) as i64)
    });
    engine.register_get("errored_for", |a: &mut AppRef| {
        let now = a.run.world.now;
        let secs = a
            .state
            .errored_since
            .map_or(0, |t| now.saturating_sub(t) / 1000);
        a.read("errored_for", secs as i64)
    });
    engine.register_get("cpu", |a: &mut AppRef| a.read("cpu", round1(a.state.cpu)));
    engine.register_get("memory", |a: &mut AppRef| {
        a.read("memory", a.state.memory as i64)
    });
    engine.register_fn("cpu_avg", AppRef::cpu_avg);
    engine.register_fn("memory_avg", AppRef::memory_avg);
    engine.register_fn("memory_growth", AppRef::memory_growth);
    engine.register_fn("restart", |a: &mut AppRef, why: &str| {
        a.act(Action::Restart, why)
    });
    engine.register_fn("reload", |a: &mut AppRef, why: &str| {
        a.act(Action::Reload, why)
    });
    engine.register_fn("stop", |a: &mut AppRef, why: &str| a.act(Action::Stop, why));
    engine.register_fn("start", |a: &mut AppRef, why: &str| {
        a.act(Action::Start, why)
    });
    engine.register_fn("scale", AppRef::scale);
    engine.register_fn("signal", |a: &mut AppRef, signal: &str, why: &str| {
        a.act(Action::Signal(signal.to_string()), why)
    });
    engine.register_fn("note", |a: &mut AppRef, text: &str| {
        a.act(Action::Note(text.to_string()), "")
    });
}
