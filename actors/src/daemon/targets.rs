//! Turning the targets a user typed into apps and instances, as PM2 reads them: `all`, an id,
//! a name, a `/regex/` over names, a namespace, or the absolute path of an app's script (the
//! CLI makes a script path it finds absolute).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use actix::prelude::*;
use pmx_core::protocol::{FailureKind, Response};
use pmx_core::view::ProcessView;

use super::Daemon;
use crate::app::AppActor;

/// Apps picked by a request: the app name, and which instances (`None`: all of them).
pub type Picks = Vec<(String, Option<Vec<u32>>)>;

impl Daemon {
    /// Resolves every target or fails on the first unknown one, before anything is done.
    pub(super) fn resolve_targets(&self, targets: &[String]) -> Result<Picks, Response> {
        if targets.is_empty() {
            return Err(Response::failure(
                FailureKind::Invalid,
                "no target given: name an app, an id, or `all`",
            ));
        }
        let mut picked: BTreeMap<String, Option<BTreeSet<u32>>> = BTreeMap::new();
        for target in targets {
            if target == "all" {
                for name in self.apps.keys() {
                    picked.insert(name.clone(), None);
                }
                continue;
            }
            let by_id = target.parse::<u32>().ok().and_then(|id| {
                let (name, _) = self.apps.iter().find(|(_, a)| a.ids.contains(&id))?;
                Some((id, name))
            });
            if let Some((id, name)) = by_id {
                // An app already picked whole stays whole.
                if let Some(ids) = picked
                    .entry(name.clone())
                    .or_insert_with(|| Some(BTreeSet::new()))
                {
                    ids.insert(id);
                }
                continue;
            }
            if self.apps.contains_key(target) {
                picked.insert(target.clone(), None);
                continue;
            }
            let named = self.apps_named_by(target)?;
            if named.is_empty() {
                return Err(not_found_near(target, self.apps.keys()));
            }
            for name in named {
                picked.insert(name, None);
            }
        }
        // As in PM2, `all` with no app to act on is an error a script can see.
        if picked.is_empty() {
            return Err(Response::failure(
                FailureKind::NotFound,
                "no app to act on (see `pmx list`)",
            ));
        }
        Ok(picked
            .into_iter()
            .map(|(name, ids)| (name, ids.map(|s| s.into_iter().collect())))
            .collect())
    }
}

impl Daemon {
    /// Sends one message to every picked app at once (`make` builds it from the instance
    /// ids) and gathers their views, sorted by id.
    pub(super) fn gather<M>(
        &self,
        picks: &Picks,
        make: &dyn Fn(Option<Vec<u32>>) -> M,
    ) -> impl Future<Output = Vec<ProcessView>> + use<M>
    where
        M: Message<Result = Vec<ProcessView>> + Send + 'static,
        AppActor: Handler<M>,
    {
        // Asked in the order of their first ids, the apps answer nearly sorted: the sort
        // below then finds runs instead of moving every view.
        let mut asked: Vec<_> = picks
            .iter()
            .filter_map(|(name, ids)| {
                let app = self.apps.get(name)?;
                Some((app.ids.iter().min().copied(), app, ids))
            })
            .collect();
        asked.sort_by_key(|(first, _, _)| *first);
        let pending: Vec<_> = asked
            .into_iter()
            .map(|(_, app, ids)| app.addr.send(make(ids.clone())))
            .collect();
        async move {
            let mut views = Vec::with_capacity(pending.len());
            for request in pending {
                views.extend(request.await.unwrap_or_default());
            }
            views.sort_by_key(|v| v.id);
            views
        }
    }
}

impl Daemon {
    /// The apps a target that is no app's name stands for: the names a `/regex/` matches, the
    /// apps of a namespace, or the apps whose script is at an absolute path.
    fn apps_named_by(&self, target: &str) -> Result<Vec<String>, Response> {
        let names = self.apps.iter();
        if let Some(pattern) = regex_of(target) {
            let regex = regex_lite::Regex::new(pattern).map_err(|e| {
                Response::failure(FailureKind::Invalid, format!("bad pattern {target}: {e}"))
            })?;
            return Ok(names
                .filter(|(name, _)| regex.is_match(name))
                .map(|(name, _)| name.clone())
                .collect());
        }
        let path = Path::new(target);
        Ok(names
            .filter(|(_, app)| {
                app.spec.options.namespace == target
                    || (path.is_absolute()
                        && Path::new(&app.spec.cwd).join(&app.spec.script) == path)
            })
            .map(|(name, _)| name.clone())
            .collect())
    }
}

/// The pattern of a `/regex/` target.
fn regex_of(target: &str) -> Option<&str> {
    target
        .strip_prefix('/')?
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
}

fn not_found(target: &str) -> Response {
    Response::failure(
        FailureKind::NotFound,
        format!("no app, id, namespace or script `{target}` (see `pmx list`)"),
    )
}

/// `not_found`, with the registered name closest to `target` when one is close (`stop
/// wrker`: did you mean `worker`?).
fn not_found_near<'a>(target: &str, names: impl Iterator<Item = &'a String>) -> Response {
    let close = names
        .map(|n| (strsim::damerau_levenshtein(target, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min();
    match close {
        Some((_, name)) => Response::failure(
            FailureKind::NotFound,
            format!("no app, id, namespace or script `{target}`: did you mean `{name}`?"),
        ),
        None => not_found(target),
    }
}

#[cfg(test)]
mod tests {
    use super::regex_of;

    #[test]
    fn a_regex_target_is_between_slashes() {
        assert_eq!(regex_of("/echo-[1,2]/"), Some("echo-[1,2]"));
        assert_eq!(regex_of("/srv/app.js"), None);
        assert_eq!(regex_of("//"), None);
        assert_eq!(regex_of("api"), None);
    }
}
