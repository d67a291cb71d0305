//! `depends_on`: the order apps start in (waves: every app after the apps it depends on),
//! and cycles, which are config errors. Dependencies on apps outside the list do not order.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::AppSpec;

/// The apps in waves: each wave only depends on earlier ones. A cycle is an error naming it
/// (`a → b → a`), with the first app of the cycle.
pub fn start_waves(specs: &[AppSpec]) -> Result<Vec<Vec<String>>, (String, String)> {
    let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let needs: BTreeMap<&str, BTreeSet<&str>> = specs
        .iter()
        .map(|s| {
            let deps = s
                .options
                .depends_on
                .iter()
                .map(|d| d.app.as_str())
                .filter(|d| names.contains(d))
                .collect();
            (s.name.as_str(), deps)
        })
        .collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < needs.len() {
        let wave: Vec<&str> = needs
            .iter()
            .filter(|(name, deps)| !placed.contains(*name) && deps.is_subset(&placed))
            .map(|(name, _)| *name)
            .collect();
        if wave.is_empty() {
            let left: Vec<&str> = needs
                .keys()
                .copied()
                .filter(|n| !placed.contains(n))
                .collect();
            let cycle = find_cycle(&needs, &left);
            let first = cycle.first().map_or(String::new(), |s| s.to_string());
            return Err((
                first,
                format!("depends_on has a cycle: {}", cycle.join(" → ")),
            ));
        }
        placed.extend(&wave);
        // Keep the order the apps were declared in within a wave.
        let mut ordered: Vec<String> = specs
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| wave.contains(&n.as_str()))
            .collect();
        ordered.dedup();
        waves.push(ordered);
    }
    Ok(waves)
}

/// A cycle among `left` (every one of which waits on another of them), closed: `a → b → a`.
fn find_cycle<'a>(needs: &BTreeMap<&'a str, BTreeSet<&'a str>>, left: &[&'a str]) -> Vec<&'a str> {
    let Some(&start) = left.first() else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = needs[current].iter().find(|d| left.contains(d)) else {
            return path;
        };
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut cycle = path[at..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Condition, Dependency};

    fn app(name: &str, deps: &[&str]) -> AppSpec {
        let mut spec = AppSpec {
            name: name.into(),
            ..AppSpec::default()
        };
        spec.options.depends_on = deps
            .iter()
            .map(|d| Dependency {
                app: d.to_string(),
                condition: Condition::Started,
            })
            .collect();
        spec
    }

    #[test]
    fn waves_follow_dependencies() {
        let apps = [
            app("api", &["db", "cache"]),
            app("worker", &["api"]),
            app("db", &[]),
            app("cache", &["db", "elsewhere"]),
        ];
        assert_eq!(
            start_waves(&apps).unwrap(),
            vec![vec!["db"], vec!["cache"], vec!["api"], vec!["worker"]]
        );
        assert_eq!(
            start_waves(&[app("a", &[]), app("b", &[])]).unwrap(),
            vec![vec!["a", "b"]]
        );
    }

    #[test]
    fn cycles_are_errors_that_name_them() {
        let apps = [
            app("a", &["b"]),
            app("b", &["c"]),
            app("c", &["a"]),
            app("d", &[]),
        ];
        let (first, message) = start_waves(&apps).unwrap_err();
        assert_eq!(first, "a");
        assert_eq!(message, "depends_on has a cycle: a → b → c → a");
        let (_, message) = start_waves(&[app("x", &["x"])]).unwrap_err();
        assert_eq!(message, "depends_on has a cycle: x → x");
    }
}
