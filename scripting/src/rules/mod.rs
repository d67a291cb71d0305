//! Rules: policies written in Rhai next to the apps. A config script declares them with
//! `rule(name, #{ every | cron | on, cooldown, min, max }, |ctx| ...)` or with the standard
//! library (`autoscale`, `memory_guard`, `leak_guard`, `flap_guard`, `scheduled_restart`,
//! in `stdlib.rhai`). A rule reads the world through `ctx` and returns decisions: it never
//! acts itself. `Policies` holds the compiled rules of one script; the daemon runs them on
//! its own thread, each run bounded in operations and time.

mod api;
mod calls;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pmx_core::Millis;
use pmx_core::protocol::StandardRule;
use pmx_core::units::{parse_duration_ms, six_field_cron};
use rhai::{AST, Dynamic, Engine, EvalAltResult, FnPtr, Map, Position};

pub use api::{
    Action, AppState, Averager, Decision, Outcome, RuleEvent, Trend, World, register_units,
};

use crate::{ConfigError, Diagnostic, at};

/// The standard rules, compiled before every config script.
pub const STDLIB: &str = include_str!("stdlib.rhai");

/// One run of a rule may take this long before it is stopped.
pub const RUN_TIME_LIMIT: Duration = Duration::from_millis(250);
/// …and this many operations.
pub const RUN_OPERATIONS: u64 = 500_000;

/// What makes a rule run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Every so many milliseconds.
    Every(Millis),
    /// At each tick of a cron expression (the `cron` crate's 6 fields).
    Cron { expr: String, six: String },
    /// When an app's instance has this event (`exit`, `errored`, `online`, `stopped`),
    /// optionally only for one app.
    On { event: String, app: Option<String> },
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Every(ms) => write!(f, "every {}", pmx_core::units::format_duration_ms(*ms)),
            Trigger::Cron { expr, .. } => write!(f, "cron {expr}"),
            Trigger::On { event, app: None } => write!(f, "on {event}"),
            Trigger::On {
                event,
                app: Some(app),
            } => write!(f, "on {event} of {app}"),
        }
    }
}

/// A rule's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub trigger: Trigger,
    /// After the rule acted, its decisions are ignored this long.
    pub cooldown_ms: Millis,
    /// Bounds for the `scale` decisions of this rule.
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// Set when a function of the standard library declared the rule.
    pub standard: Option<StandardRule>,
}

/// The events an `on` rule may name.
pub const EVENTS: [&str; 4] = ["exit", "errored", "online", "stopped"];

/// A rule as the script declared it: its options, its function, where.
pub(crate) struct Declared {
    name: String,
    options: Map,
    func: FnPtr,
    position: Position,
}

/// The rules of one script, compiled and ready to run.
pub struct Policies {
    engine: Engine,
    ast: AST,
    rules: Vec<(RuleSpec, FnPtr)>,
    deadline: Rc<Cell<Instant>>,
}

/// The sandbox for rules: the config sandbox's limits, per run.
fn rule_engine(deadline: Rc<Cell<Instant>>) -> Engine {
    let mut engine = crate::engine(Instant::now());
    engine.set_max_operations(RUN_OPERATIONS);
    engine.on_progress(move |_| {
        (Instant::now() > deadline.get()).then(|| Dynamic::from("the rule ran too long"))
    });
    engine
}

impl Policies {
    /// Compiles a config script for its rules: `app()` declarations are ignored (the CLI sent
    /// the apps), `env()` reads `vars` (the variables the CLI's evaluation read).
    pub fn load(file: &str, script: &str, vars: &Vars) -> Result<Self, ConfigError> {
        let deadline = Rc::new(Cell::new(Instant::now() + crate::TIME_LIMIT));
        let mut engine = rule_engine(deadline.clone());
        engine.register_fn("app", |_: Map| {});
        crate::register_env(&mut engine, Arc::new(vars.clone()), Rc::default());
        let fail = |diagnostics| ConfigError {
            file: file.to_string(),
            source: script.to_string(),
            diagnostics,
        };
        let (ast, declared) = declare(&mut engine, script).map_err(fail)?;
        let rules = specs_of(declared).map_err(fail)?;
        api::register(&mut engine);
        calls::check(&engine, &ast).map_err(fail)?;
        Ok(Policies {
            engine,
            ast,
            rules,
            deadline,
        })
    }

    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|(spec, _)| spec)
    }

    /// Runs rule `index` against `world`; its decisions, or why it failed.
    pub fn run(
        &self,
        index: usize,
        world: World,
        event: Option<RuleEvent>,
    ) -> Result<Outcome, String> {
        let Some((_, func)) = self.rules.get(index) else {
            return Err(format!("no rule #{index}"));
        };
        self.deadline.set(Instant::now() + RUN_TIME_LIMIT);
        let ctx = api::Ctx::new(world, event);
        match func.call::<Dynamic>(&self.engine, &self.ast, (ctx.clone(),)) {
            Ok(_) => Ok(ctx.outcome()),
            Err(e) => Err(failure_message(&e)),
        }
    }
}

fn failure_message(e: &EvalAltResult) -> String {
    let (line, column) = at(e.position());
    let message = match e {
        EvalAltResult::ErrorTerminated(..) => format!(
            "stopped after {} ms (an endless loop?)",
            RUN_TIME_LIMIT.as_millis()
        ),
        EvalAltResult::ErrorTooManyOperations(_) => {
            format!("stopped after {RUN_OPERATIONS} operations (an endless loop?)")
        }
        EvalAltResult::ErrorRuntime(value, _) => format!("threw {value}"),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => return failure_message(inner),
        other => other.to_string(),
    };
    if line == 0 {
        message
    } else {
        format!("{line}:{column}: {message}")
    }
}

/// Compiles the standard library and the script together and runs the script's top level,
/// collecting every `rule(...)` it declares.
pub(crate) fn declare(
    engine: &mut Engine,
    script: &str,
) -> Result<(AST, Vec<Declared>), Vec<Diagnostic>> {
    let declared: Rc<std::cell::RefCell<Vec<Declared>>> = Rc::default();
    let sink = declared.clone();
    engine.register_fn(
        "rule",
        move |ctx: rhai::NativeCallContext, name: &str, options: Map, func: FnPtr| {
            sink.borrow_mut().push(Declared {
                name: name.to_string(),
                options,
                func,
                position: ctx.call_position(),
            });
        },
    );
    api::register_units(engine);
    let ast = crate::run_with_stdlib(engine, script)?;
    let declared = declared.take();
    Ok((ast, declared))
}

/// Checks each declaration; every problem, placed at its `rule(` call.
pub(crate) fn specs_of(declared: Vec<Declared>) -> Result<Vec<(RuleSpec, FnPtr)>, Vec<Diagnostic>> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for d in declared {
        let (line, column) = at(d.position);
        let mut fail = |message: String| {
            problems.push(Diagnostic {
                line,
                column,
                message: format!("rule `{}`: {message}", d.name),
            })
        };
        if rules
            .iter()
            .any(|(r, _): &(RuleSpec, FnPtr)| r.name == d.name)
        {
            fail("the name is already declared".into());
            continue;
        }
        match rule_spec(&d.name, &d.options) {
            Ok(spec) => rules.push((spec, d.func)),
            Err(message) => fail(message),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

const RULE_OPTIONS: [&str; 7] = ["every", "cron", "on", "app", "cooldown", "min", "max"];

/// The option by which the standard library says which of its functions declared a rule
/// (`#{ function, app, ... }`); not one a script writes.
const STANDARD: &str = "standard";

fn standard_of(options: &Map) -> Result<Option<StandardRule>, String> {
    let Some(value) = options.get(STANDARD) else {
        return Ok(None);
    };
    let Some(map) = value.read_lock::<Map>() else {
        return Err(format!("{STANDARD}: expected a map"));
    };
    let mut args: std::collections::BTreeMap<String, String> = map
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let function = args.remove("function").unwrap_or_default();
    let app = args.remove("app").unwrap_or_default();
    Ok(Some(StandardRule {
        function,
        app,
        args,
    }))
}

fn rule_spec(name: &str, options: &Map) -> Result<RuleSpec, String> {
    if name.trim().is_empty() {
        return Err("a rule needs a name".into());
    }
    for key in options.keys() {
        if !RULE_OPTIONS.contains(&key.as_str()) && key.as_str() != STANDARD {
            return Err(format!(
                "unknown option `{key}` (a rule has {})",
                RULE_OPTIONS.join(", ")
            ));
        }
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match options.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(format!("{key}: expected a string, found {}", v.type_name())),
        }
    };
    let count = |key: &str| -> Result<Option<u32>, String> {
        match options.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("{key}: expected a whole number ≥ 0, found {v}")),
        }
    };
    let duration = |key: &str| -> Result<Option<Millis>, String> {
        text(key)?
            .map(|t| parse_duration_ms(&t).map_err(|e| format!("{key}: {e}")))
            .transpose()
    };
    let app = text("app")?;
    let trigger = match (duration("every")?, text("cron")?, text("on")?) {
        (Some(ms), None, None) if ms >= 100 => Trigger::Every(ms),
        (Some(_), None, None) => return Err("every: at least 100ms".into()),
        (None, Some(expr), None) => {
            let six = crate::validate_cron("cron", &expr)
                .and_then(|_| six_field_cron(&expr).map_err(|n| format!("cron: {n} fields")))?;
            Trigger::Cron { expr, six }
        }
        (None, None, Some(event)) if EVENTS.contains(&event.as_str()) => Trigger::On {
            event,
            app: app.clone(),
        },
        (None, None, Some(event)) => {
            return Err(format!(
                "on: unknown event `{event}` (one of {})",
                EVENTS.join(", ")
            ));
        }
        _ => {
            return Err(
                "give exactly one of every: \"30s\", cron: \"0 3 * * *\" or on: \"exit\"".into(),
            );
        }
    };
    if app.is_some() && !matches!(trigger, Trigger::On { .. }) {
        return Err(
            "app: only for `on` rules (other rules name their apps in ctx.app(...))".into(),
        );
    }
    let (min, max) = (count("min")?, count("max")?);
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(format!("min {lo} is above max {hi}"));
    }
    Ok(RuleSpec {
        name: name.to_string(),
        trigger,
        cooldown_ms: duration("cooldown")?.unwrap_or(0),
        min,
        max,
        standard: standard_of(options)?,
    })
}

/// Environment variables, by name.
pub type Vars = std::collections::BTreeMap<String, String>;

#[cfg(test)]
mod tests;
