//! The spawner thread: runs every fork and exec off the actors' thread. A spawn blocks its
//! caller until the child has exec'd (vfork), one to two milliseconds here; on the spawner
//! thread the actors meanwhile journal, capture and answer, and a start of 500 apps no
//! longer adds each exec's wait to the daemon's own work. The result goes back to the
//! caller's closure (the app's actor, as a message).

use std::os::fd::OwnedFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::reaper::Managed;
use super::spawn::{Prepared, SpawnError, Spawned};

/// A process just spawned, on its way to its actor. Dropped undelivered (its actor or the
/// daemon ended meanwhile), it is killed: no process runs that no actor knows of.
pub struct Fresh {
    spawned: Option<Spawned>,
    /// Its start time (/proc/PID/stat), read here: the read waits for the exec to finish.
    pub start_time: Option<u64>,
    managed: Managed,
}

impl Fresh {
    /// The process, now its actor's.
    pub fn take(mut self) -> Option<Spawned> {
        self.spawned.take()
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let Some(spawned) = self.spawned.take() else {
            return;
        };
        if let Some(pidfd) = &spawned.pidfd {
            let _ = rustix::process::pidfd_send_signal(&**pidfd, rustix::process::Signal::KILL);
        }
        if let Some(group) = rustix::process::Pid::from_raw(spawned.pid as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        // No actor waits for it: the reaper does.
        self.managed.remove(spawned.pid);
    }
}

type Done = Box<dyn FnOnce(Result<Fresh, SpawnError>) + Send>;

enum Job {
    Spawn {
        prepared: Box<Prepared>,
        /// Descriptors the command passes by number (listening sockets): open until the
        /// exec, whatever the actor does meanwhile.
        keep: Vec<Arc<OwnedFd>>,
        done: Done,
    },
    Stop,
}

/// Spawns asked for and not started yet, at most. The thread spawns one at a time and each
/// waits for its exec, so a longer queue would not go faster: it would only hold more
/// commands (each with its whole environment) at once, and leave the heap that much larger
/// after a burst. A full queue makes the actors' thread wait, as each spawn did before.
const QUEUED: usize = 4;

/// The handle to the spawner thread (cheap to clone).
#[derive(Clone)]
pub struct Spawner {
    jobs: SyncSender<Job>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Spawner {
    /// Starts the thread. Spawned pids join `managed` before the reaper can see them.
    pub fn start(managed: Managed) -> std::io::Result<Self> {
        let (jobs, inbox) = sync_channel(QUEUED);
        let thread = std::thread::Builder::new()
            .name("pmx-spawn".into())
            .stack_size(256 * 1024)
            .spawn(move || serve(inbox, managed))?;
        Ok(Self {
            jobs,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Runs `prepared` on the thread and hands the result to `done` there (waits while
    /// `QUEUED` spawns are waiting already).
    pub fn spawn(
        &self,
        prepared: Prepared,
        keep: Vec<Arc<OwnedFd>>,
        done: impl FnOnce(Result<Fresh, SpawnError>) + Send + 'static,
    ) {
        let job = Job::Spawn {
            prepared: Box::new(prepared),
            keep,
            done: Box::new(done),
        };
        if let Err(std::sync::mpsc::SendError(Job::Spawn { done, .. })) = self.jobs.send(job) {
            done(Err(SpawnError::from("the daemon is stopping".to_string())));
        }
    }

    /// Ends the thread after the spawns already asked for, waiting at most `timeout`;
    /// whether it ended (or had already been stopped).
    pub fn stop(&self, timeout: Duration) -> bool {
        let _ = self.jobs.send(Job::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        thread.is_none_or(|thread| crate::join_within(thread, timeout))
    }
}

fn serve(inbox: Receiver<Job>, managed: Managed) {
    while let Ok(Job::Spawn {
        prepared,
        keep,
        done,
    }) = inbox.recv()
    {
        // The pid is managed from the moment it exists: the reaper, on the actors' thread,
        // never waits for a fresh process that ends before its actor hears of it.
        let result = managed.holding(|| prepared.run().map(|s| (s.pid, s)));
        drop(keep);
        done(result.map(|spawned| Fresh {
            start_time: super::identity::start_time(spawned.pid),
            spawned: Some(spawned),
            managed: managed.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::spawn::{SpawnRequest, prepare};
    use crate::testing::proc_state as state;
    use pmx_core::spec::AppSpec;
    use std::sync::mpsc::channel;
    use std::time::Instant;

    /// `argv` spawned through `spawner`, its stdout captured; the answer.
    fn spawn_through(spawner: &Spawner, argv: &[&str]) -> Result<Fresh, SpawnError> {
        let spec = AppSpec {
            name: "t".into(),
            script: argv.join(" "),
            cwd: "/".into(),
            ..AppSpec::default()
        };
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let request = SpawnRequest {
            spec: &spec,
            argv: &argv,
            id: 0,
            token: "test",
            env: Vec::new(),
            fds: Vec::new(),
            capture_out: true,
            capture_err: false,
        };
        let (tx, rx) = channel();
        spawner.spawn(prepare(&request).unwrap(), Vec::new(), move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    fn sleeper(spawner: &Spawner) -> Result<Fresh, SpawnError> {
        spawn_through(spawner, &["/bin/sh", "-c", "exec sleep 30"])
    }

    fn reap(pid: u32) {
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid as i32),
            rustix::process::WaitOptions::empty(),
        );
    }

    #[test]
    fn a_spawn_is_managed_at_once_and_killed_if_nobody_takes_it() {
        let managed = Managed::default();
        let spawner = Spawner::start(managed.clone()).unwrap();
        let fresh = sleeper(&spawner).unwrap();
        assert!(fresh.start_time.is_some());
        let spawned = fresh.spawned.as_ref().unwrap();
        let pid = spawned.pid;
        assert!(spawned.out.is_some() && spawned.err.is_none());
        assert!(
            managed.contains(pid),
            "managed before its actor hears of it"
        );
        assert!(matches!(state(pid), Some('S' | 'R')));
        // Taken: it is its actor's, and runs on.
        let taken = fresh.take().unwrap();
        assert!(matches!(state(pid), Some('S' | 'R')));
        rustix::process::pidfd_send_signal(
            taken.pidfd.as_deref().unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        reap(pid);
        // Dropped undelivered: killed, and left to the reaper.
        let fresh = sleeper(&spawner).unwrap();
        let pid = fresh.spawned.as_ref().unwrap().pid;
        drop(fresh);
        assert!(!managed.contains(pid));
        let deadline = Instant::now() + Duration::from_secs(10);
        while state(pid) != Some('Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(state(pid), Some('Z'), "killed");
        reap(pid);
        assert!(spawner.stop(Duration::from_secs(2)), "the thread ended");
        assert!(
            spawner.thread.lock().unwrap().is_none(),
            "its handle is taken"
        );
    }

    #[test]
    fn a_failed_exec_and_a_stopped_spawner_answer_errors() {
        let spawner = Spawner::start(Managed::default()).unwrap();
        let error = |spawner: &Spawner| {
            spawn_through(spawner, &["/nonexistent/program"])
                .err()
                .map(|e| e.message)
                .expect("an error")
        };
        let failed = error(&spawner);
        assert!(
            failed.contains("cannot execute `/nonexistent/program`"),
            "{failed}"
        );
        assert!(spawner.stop(Duration::from_secs(2)));
        let refused = error(&spawner);
        assert!(refused.contains("stopping"), "{refused}");
    }
}
