//! `start`: validate, register (journaled and flushed), then launch.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{FailureKind, Response};
use pmx_core::spec::AppSpec;
use pmx_core::state::Command;

use super::{AppEntry, Daemon, Reply, internal, ready};
use crate::app::AppActor;
use crate::clock::now_ms;
use crate::process::spawn;

/// What the daemon checks before registering a spec: its fields, and that it can be run
/// (script, interpreter). `up` checks a whole config with it before acting.
pub(super) fn check(spec: &AppSpec) -> Result<(), String> {
    spec.validate().map_err(|e| e.to_string())?;
    spawn::resolve(spec).map(|_| ())
}

impl Daemon {
    /// Checks a spec and registers the app (journaled, actor started, instances stopped).
    /// The caller's command event makes the registration durable.
    pub(super) fn register(&mut self, spec: AppSpec, cause: &Cause) -> Result<(), Response> {
        self.register_reusing(spec, &[], &BTreeMap::new(), cause)
    }

    /// As `register`, keeping the first of `ids` (an app whose spec a config changed keeps
    /// its ids; new instances get new ones).
    pub(super) fn register_reusing(
        &mut self,
        mut spec: AppSpec,
        reuse: &[u32],
        restarts: &BTreeMap<u32, u32>,
        cause: &Cause,
    ) -> Result<(), Response> {
        check(&spec).map_err(|e| Response::failure(FailureKind::Invalid, e))?;
        self.share_env(&mut spec);
        if let Some(existing) = self.apps.get(&spec.name) {
            return Err(Response::failure(
                FailureKind::Conflict,
                format!(
                    "an app named `{}` already exists (id {:?}): use `pmx restart {}` or choose another --name",
                    spec.name, existing.ids, spec.name
                ),
            ));
        }
        let kept = reuse.len().min(spec.instances as usize);
        let fresh = spec.instances - kept as u32;
        let ids: Vec<u32> = reuse[..kept]
            .iter()
            .copied()
            .chain(self.next_id..self.next_id + fresh)
            .collect();
        let name = spec.name.clone();
        let created = NewEvent {
            app: name.clone(),
            instance: None,
            kind: EventKind::AppCreated {
                spec: Box::new(spec.clone()),
                ids: ids.clone(),
            },
            cause: cause.clone(),
        };
        // Durable with the command that follows (start, resurrect): nothing acts before it.
        self.shared
            .journal
            .append(vec![created])
            .map_err(internal)?;
        self.next_id += fresh;
        // One spec for the registry and the actor.
        let spec = Arc::new(spec);
        let instances = pmx_core::instances::paired(&ids, &[]);
        let addr = AppActor::new(spec.clone(), &instances, now_ms(), self.shared.clone())
            .with_restarts(restarts)
            .start();
        self.apps.insert(
            name,
            AppEntry {
                addr,
                ids,
                indexes: Vec::new(),
                spec,
                watch_paused: false,
            },
        );
        Ok(())
    }

    /// Lets `spec` share the captured environment of the app registered before it when the
    /// two are equal (apps started by one command carry the same one).
    pub(super) fn share_env(&mut self, spec: &mut AppSpec) {
        if spec.base_env == self.last_env {
            spec.base_env = self.last_env.clone();
        } else {
            self.last_env = spec.base_env.clone();
        }
    }

    pub(super) fn start(&mut self, spec: AppSpec, cause: Cause) -> Reply {
        let name = spec.name.clone();
        if let Err(refused) = self.register(spec, &cause) {
            return ready(refused);
        }
        self.control(&[name], Command::Start, cause)
    }
}
