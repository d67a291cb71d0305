//! What an instance looks like from outside: the `ProcessView`s `list`, `jlist` and waiters
//! are answered with.

use std::path::Path;
use std::sync::Arc;

use pmx_core::view::{ProcessView, Usage};

use super::AppActor;
use crate::sampler::Sampler;

impl AppActor {
    pub(super) fn views(&mut self, ids: &Option<Vec<u32>>) -> Vec<ProcessView> {
        self.selected(ids)
            .into_iter()
            .map(|i| self.view(i))
            .collect()
    }

    pub(super) fn view(&self, i: usize) -> ProcessView {
        let slot = &self.slots[i];
        let (id, index) = (slot.id, slot.index);
        let figures = match slot.machine.pid {
            Some(pid) => self
                .shared
                .sampler
                .figures(id)
                .unwrap_or_else(|| Sampler::first_look(pid)),
            None => Default::default(),
        };
        let (out_log, error_log, pid_path) = self
            .shown_files
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| {
                let files = self.log_files(id);
                let shown = |p: Option<&Path>| -> Arc<str> {
                    p.map_or("/dev/null".into(), |p| p.to_string_lossy().into())
                };
                let pid = self.pid_path(id);
                let pid = shown(Some(&pid));
                (
                    shown(files.out.as_deref()),
                    shown(files.err.as_deref()),
                    pid,
                )
            })
            .clone();
        let loss = self.shared.logs.loss(id);
        let m = &self.slots[i].machine;
        ProcessView {
            id,
            name: self.spec.name.clone(),
            index,
            status: m.status,
            pid: m.pid,
            restarts: m.restarts,
            unstable_restarts: m.unstable_restarts,
            started_at: m.started_at.filter(|_| m.pid.is_some()),
            created_at: self.created_at,
            cpu: figures.latest.cpu,
            memory: figures.latest.memory,
            usage: Usage {
                tree_cpu: figures.latest.tree_cpu,
                tree_memory: figures.latest.tree_memory,
                processes: figures.latest.processes,
                cpu_avg: figures.cpu_avg,
                memory_avg: figures.memory_avg,
            },
            user: self.shared.user.clone(),
            last_exit: m.last_exit,
            error: m.error.clone(),
            command: self.command.clone(),
            out_log,
            error_log,
            pid_path,
            log_lost_bytes: loss.as_ref().map_or(0, |l| l.bytes),
            log_error: loss.map(|l| l.last_error),
            output: self.shared.logs.written(id),
            policy_actions: self.policy_actions.get(&id).cloned().unwrap_or_default(),
            watch_paused: self.watch_paused,
            agent: slot.run.as_ref().and_then(|r| r.agent.clone()),
            conf_env: slot
                .run
                .as_ref()
                .map(|r| r.conf_env.clone())
                .unwrap_or_default(),
            injected: slot
                .run
                .as_ref()
                .map(|r| r.injected.clone())
                .unwrap_or_default(),
            versioning: self.versioning.as_ref().and_then(|(_, v)| v.clone()),
            spec: self.spec.clone(),
        }
    }
}
