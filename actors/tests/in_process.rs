//! `run` serves a home in the test's own process: the whole daemon (socket, journal, app
//! actors, group commit, housekeeping) on a temporary home, reached over its socket with the
//! protocol's frames, stopped by its `shutdown` future. Its own test binary: the daemon reaps
//! the children of the process it runs in.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pmx_actors::{DaemonConfig, run};
use pmx_core::event::EventKind;
use pmx_core::frame;
use pmx_core::paths::Paths;
use pmx_core::protocol::{Hello, PROTOCOL_VERSION, Request, Response, StartRequest, Welcome};
use pmx_core::spec::{AppSpec, Interpreter};
use pmx_storage::{Journal, SledJournal};

const DEADLINE: Duration = Duration::from_secs(10);

fn send<T: serde::Serialize>(stream: &mut UnixStream, value: &T) {
    let bytes = frame::encode(value).expect("a frame");
    stream.write_all(&bytes).expect("the daemon reads");
}

fn receive<T: serde::de::DeserializeOwned>(stream: &mut UnixStream) -> T {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("the daemon answers");
    let mut body = vec![0; frame::body_len(header).expect("a sane length")];
    stream.read_exact(&mut body).expect("the whole answer");
    frame::decode(&body).expect("an answer of this protocol")
}

/// Connects once the daemon listens, and says hello.
fn connect(paths: &Paths) -> UnixStream {
    let deadline = Instant::now() + DEADLINE;
    let mut stream = loop {
        match UnixStream::connect(paths.socket()) {
            Ok(stream) => break stream,
            Err(e) => assert!(Instant::now() < deadline, "no daemon listens: {e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    stream.set_read_timeout(Some(DEADLINE)).expect("a timeout");
    let hello = Hello {
        version: PROTOCOL_VERSION,
        update: false,
    };
    send(&mut stream, &hello);
    let welcome: Welcome = receive(&mut stream);
    assert_eq!(welcome.version, PROTOCOL_VERSION);
    stream
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for this test's purpose: it runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            Some(
                stat.rsplit_once(')')?
                    .1
                    .trim_start()
                    .starts_with(['S', 'R']),
            )
        })
        .unwrap_or(false)
}

/// A daemon `run` serves on its own thread until `stop`.
struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    done: std::sync::mpsc::Receiver<Result<(), String>>,
}

impl Served {
    fn start(paths: &Paths) -> Served {
        let config = DaemonConfig {
            paths: paths.clone(),
            retention: Default::default(),
            rotation: Default::default(),
            sample_interval: Duration::from_secs(1),
            http: None,
            relaunch: None,
            handoff: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = run(config, move || async move {
                let _ = stopped.await;
            });
            let _ = done_tx.send(result.map_err(|e| e.to_string()));
        });
        Served { stop, done }
    }

    /// Asks it to stop; what `run` returned.
    fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        (self.done.recv_timeout(DEADLINE)).unwrap_or_else(|_| Err("run did not return".into()))
    }
}

#[test]
fn run_serves_a_temporary_home_in_this_process_until_its_shutdown_and_again_after() {
    let home = tempfile::tempdir().expect("a temporary home");
    let paths = Paths::new(home.path().join("pmx"));
    let served = Served::start(&paths);
    let mut stream = connect(&paths);
    let spec = AppSpec {
        name: "api".into(),
        script: "/bin/sleep".into(),
        args: vec!["60".into()],
        interpreter: Interpreter::None,
        cwd: home.path().display().to_string(),
        ..AppSpec::default()
    };
    send(
        &mut stream,
        &Request::Start(Box::new(StartRequest { spec })),
    );
    let pid = match receive(&mut stream) {
        Response::Processes(list) => list.processes[0].pid.unwrap_or(0),
        other => panic!("start: {other:?}"),
    };
    // Ended by pid if anything below fails.
    let guard = scopeguard(pid);
    assert!(alive(pid), "the app runs");
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).map(|m| m.permissions().mode() & 0o777)
    };
    assert_eq!(mode(paths.home()).ok(), Some(0o700));
    assert_eq!(mode(&paths.socket()).ok(), Some(0o600));
    assert_eq!(served.stop(), Ok(()));
    assert!(!alive(pid), "the shutdown stopped the app");
    assert!(!paths.socket().exists(), "the socket is removed");
    drop(guard);
    // Nothing holds the journal once `run` returned: it opens again, and holds what happened.
    let journal = SledJournal::open(&paths.journal()).expect("the journal opens again");
    let kinds: Vec<_> = (journal.all().expect("its events").into_iter())
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Spawned { pid: p, .. } if *p == pid)),
        "{kinds:#?}"
    );
    assert!(
        matches!(kinds.last(), Some(EventKind::DaemonStopped { .. })),
        "{kinds:#?}"
    );
    drop(journal);
    // Served again: the app stopped by the shutdown comes back (what should run is unchanged),
    // launching at first (its process is spawned on the spawner thread), then with its pid.
    let served = Served::start(&paths);
    let mut stream = connect(&paths);
    let deadline = Instant::now() + DEADLINE;
    let back = loop {
        send(&mut stream, &Request::List);
        let back = match receive(&mut stream) {
            Response::Processes(list) => list.processes,
            other => panic!("list: {other:?}"),
        };
        if back.first().is_none_or(|p| p.pid.is_some()) || Instant::now() > deadline {
            break back;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(back.len(), 1);
    let again = back[0].pid.unwrap_or(0);
    let _guard = scopeguard(again);
    assert!(again != pid && alive(again), "{back:?}");
    assert_eq!(served.stop(), Ok(()));
    assert!(!alive(again));
}

/// SIGKILLs `pid` when dropped (a failed assertion), if it still runs.
fn scopeguard(pid: u32) -> impl Drop {
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            if alive(self.0)
                && let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    Kill(pid)
}
