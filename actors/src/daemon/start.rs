//! `start`: validate, register (journaled and flushed), then launch.

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{FailureKind, ProcessList, Response};
use pmx_core::spec::AppSpec;
use pmx_core::state::Command;

use super::{AppEntry, Daemon, Reply, internal, ready};
use crate::app::{AppActor, Control};
use crate::clock::now_ms;
use crate::process::spawn;

impl Daemon {
    pub(super) fn start(&mut self, spec: AppSpec, cause: Cause) -> Reply {
        if let Err(e) = spec.validate() {
            return ready(Response::failure(FailureKind::Invalid, e.to_string()));
        }
        if let Some(existing) = self.apps.get(&spec.name) {
            return ready(Response::failure(
                FailureKind::Conflict,
                format!(
                    "an app named `{}` already exists (id {:?}): use `pmx restart {}` or choose another --name",
                    spec.name, existing.ids, spec.name
                ),
            ));
        }
        if let Err(e) = spawn::resolve(&spec) {
            return ready(Response::failure(FailureKind::Invalid, e));
        }
        let ids: Vec<u32> = (self.next_id..self.next_id + spec.instances).collect();
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
        if let Err(e) = self.record(vec![created, Self::command_event(&name, "start", &cause)]) {
            return ready(internal(e));
        }
        self.next_id += spec.instances;
        let addr = AppActor::new(spec, &ids, now_ms(), self.shared.clone()).start();
        let launched = addr.send(Control {
            command: Command::Start,
            ids: None,
            cause,
        });
        self.apps.insert(name, AppEntry { addr, ids });
        let journal = self.shared.journal.clone();
        Box::pin(
            async move {
                let processes = launched.await.unwrap_or_default();
                match journal.flush() {
                    Ok(()) => Response::Processes(ProcessList { processes }),
                    Err(e) => internal(e),
                }
            }
            .into_actor(self),
        )
    }
}
