//! Turning the targets a user typed (names, ids, `all`) into apps and instances.

use std::collections::{BTreeMap, BTreeSet};

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
            if let Ok(id) = target.parse::<u32>() {
                let Some((name, _)) = self.apps.iter().find(|(_, a)| a.ids.contains(&id)) else {
                    return Err(not_found(target));
                };
                // An app already picked whole stays whole.
                if let Some(ids) = picked
                    .entry(name.clone())
                    .or_insert_with(|| Some(BTreeSet::new()))
                {
                    ids.insert(id);
                }
                continue;
            }
            if !self.apps.contains_key(target) {
                return Err(not_found(target));
            }
            picked.insert(target.clone(), None);
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
        let pending: Vec<_> = picks
            .iter()
            .filter_map(|(name, ids)| Some(self.apps.get(name)?.addr.send(make(ids.clone()))))
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

fn not_found(target: &str) -> Response {
    Response::failure(
        FailureKind::NotFound,
        format!("no app or id `{target}` (see `pmx list`)"),
    )
}
