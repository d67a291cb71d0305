use std::collections::BTreeMap;
use std::rc::Rc;

use pmx_core::metrics::Figure;

use super::*;

fn world(cpu_avg: f64, instances: u32) -> World {
    let state = AppState {
        name: "api".into(),
        ids: (0..instances).collect(),
        online: instances,
        status: "online".into(),
        ..AppState::default()
    };
    World {
        now: 1_000_000,
        apps: BTreeMap::from([("api".to_string(), state)]),
        averages: Rc::new(move |ids: &[u32], figure, _| match figure {
            Figure::Cpu => ids.iter().map(|_| cpu_avg).collect(),
            Figure::Memory => ids.iter().map(|_| 100.0).collect(),
        }),
        growth: Rc::new(|_: &[u32], _| vec![]),
    }
}

fn load(script: &str) -> Policies {
    match Policies::load("p.rhai", script, &Vars::new()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_standard_autoscale_reads_cpu_and_decides_with_its_figures() {
    let p =
        load(r#"autoscale("api", #{ min: 1, max: 3, above: 60.0, window: "10s", every: "1s" });"#);
    let spec = p.specs().next().unwrap();
    assert_eq!(spec.name, "autoscale-api");
    assert_eq!(spec.trigger, Trigger::Every(1000));
    assert_eq!((spec.min, spec.max), (Some(1), Some(3)));
    let busy = p.run(0, world(85.0, 2), None).unwrap();
    assert_eq!(busy.decisions.len(), 1);
    let d = &busy.decisions[0];
    assert_eq!(d.action, Action::Scale(3));
    assert_eq!(d.reason, "cpu 85.0% above 60.0% over 10s");
    assert_eq!(d.figures, vec!["api.cpu_avg(10s)=85", "api.instances=2"]);
    let idle = p.run(0, world(5.0, 2), None).unwrap();
    assert_eq!(idle.decisions[0].action, Action::Scale(1));
    assert!(p.run(0, world(40.0, 2), None).unwrap().decisions.is_empty());
}

#[test]
fn a_written_rule_gets_the_event_and_notes() {
    let p = load(
        r#"
        app(#{ name: "api", script: "a.js" });
        rule("crash-note", #{ on: "exit", app: "api" }, |ctx| {
            let e = ctx.event;
            if e.code != 0 { ctx.note(`api exited with ${e.code}`) }
        });
        "#,
    );
    let spec = p.specs().next().unwrap();
    assert_eq!(spec.trigger.to_string(), "on exit of api");
    let event = RuleEvent {
        kind: "exit".into(),
        app: "api".into(),
        instance: Some(0),
        code: Some(3),
        signal: None,
    };
    let out = p.run(0, world(0.0, 1), Some(event)).unwrap();
    assert_eq!(
        out.decisions[0].action,
        Action::Note("api exited with 3".into())
    );
    assert_eq!(out.decisions[0].app, "api");
}

#[test]
fn runaway_and_throwing_rules_fail_with_a_reason() {
    let p = load(
        r#"
        rule("spin", #{ every: "1s" }, |ctx| { loop { } });
        rule("throw", #{ every: "1s" }, |ctx| { throw "boom" });
        rule("ghost", #{ every: "1s" }, |ctx| { ctx.app("nope").restart("x") });
        "#,
    );
    let started = std::time::Instant::now();
    let spin = p.run(0, world(0.0, 1), None).unwrap_err();
    assert!(spin.contains("stopped after"), "{spin}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let thrown = p.run(1, world(0.0, 1), None).unwrap_err();
    assert!(thrown.contains("threw boom"), "{thrown}");
    assert!(thrown.starts_with("3:"), "placed: {thrown}");
    let ghost = p.run(2, world(0.0, 1), None).unwrap_err();
    assert!(ghost.contains("no app named `nope`"), "{ghost}");
}

#[test]
fn bad_declarations_are_placed_at_their_rule_call() {
    let err = Policies::load(
        "p.rhai",
        "app(#{ name: \"a\", script: \"a.js\" });\nrule(\"x\", #{ evry: \"1s\" }, |c| {});\nrule(\"y\", #{ every: \"1s\", on: \"exit\" }, |c| {});\nrule(\"z\", #{ on: \"boot\" }, |c| {});\n",
        &Vars::new(),
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("p.rhai:2:1: rule `x`: unknown option `evry`"),
        "{text}"
    );
    assert!(
        text.contains("p.rhai:3:1: rule `y`: give exactly one of"),
        "{text}"
    );
    assert!(
        text.contains("p.rhai:4:1: rule `z`: on: unknown event `boot`"),
        "{text}"
    );
}

#[test]
fn a_rule_calling_what_does_not_exist_is_refused_where_it_calls_it() {
    let script = "fn helper(a) { a.note(\"x\") }\n\
                  rule(\"r\", #{ every: \"1s\" }, |ctx| {\n\
                  \x20 let a = ctx.app(\"api\");\n\
                  \x20 if a.cpu_avg(\"1m\") > 90.0 { a.restrat(\"hot\"); }\n\
                  \x20 helper(a); nope(1);\n\
                  });\n";
    let err = Policies::load("p.rhai", script, &Vars::new())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("p.rhai:4:33: no method `restrat` (did you mean `restart`?)"),
        "{text}"
    );
    assert!(text.contains("p.rhai:5:14: no function `nope`"), "{text}");
    assert!(
        !text.contains("`helper`"),
        "the script's own functions exist: {text}"
    );
}

#[test]
fn cron_rules_use_posix_weekdays() {
    let p = load(r#"scheduled_restart("api", "0 3 * * 1");"#);
    let Trigger::Cron { six, .. } = &p.specs().next().unwrap().trigger else {
        panic!("not a cron rule")
    };
    assert_eq!(six, "0 0 3 * * 2");
}

#[test]
fn the_example_config_declares_its_rules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies.rhai");
    let script = std::fs::read_to_string(path).unwrap();
    let vars = Vars::from([("HELLO_WORKERS".to_string(), "3".to_string())]);
    let opts = crate::EvalOptions {
        env_name: None,
        vars: std::sync::Arc::new(vars.clone()),
    };
    let config = crate::evaluate_config(std::path::Path::new(path), &script, &opts).unwrap();
    assert_eq!(
        config.env_read, vars,
        "the variables the script read travel with it"
    );
    let names: Vec<String> = config
        .rules
        .into_iter()
        .map(|r| format!("{} ({})", r.name, r.trigger))
        .collect();
    assert_eq!(
        names,
        [
            "hello-autoscale (every 15s)",
            "worker-crashes (on exit)",
            "flap-guard-hello-worker-0 (every 5s)"
        ]
    );
}

#[test]
fn flap_guard_starts_an_app_errored_longer_than_its_cool_off() {
    let p = load(r#"flap_guard("api", "30s");"#);
    let errored_for = |secs: u64| {
        let mut w = world(0.0, 1);
        let api = w.apps.get_mut("api").unwrap();
        api.status = "errored".into();
        api.online = 0;
        api.errored_since = Some(w.now - secs * 1000);
        w
    };
    assert!(
        p.run(0, errored_for(10), None)
            .unwrap()
            .decisions
            .is_empty()
    );
    let late = p.run(0, errored_for(31), None).unwrap();
    assert_eq!(late.decisions[0].action, Action::Start);
    assert_eq!(late.decisions[0].reason, "errored for 30s: trying again");
    assert!(
        p.run(0, world(0.0, 1), None).unwrap().decisions.is_empty(),
        "online: left alone"
    );
}
