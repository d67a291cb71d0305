//! The socket client: connects to the daemon (starting it in the background when none runs),
//! does the handshake, and exchanges one request for one response.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pmx_core::frame;
use pmx_core::paths::Paths;
use pmx_core::protocol::{Hello, PROTOCOL_VERSION, Request, Response, Welcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CliError;

pub struct Client {
    stream: UnixStream,
}

/// How long a freshly started daemon has to open its socket.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
/// A start attempt that has not answered by then is tried again.
const DAEMON_RESPAWN_AFTER: Duration = Duration::from_millis(500);

impl Client {
    /// Connects, starting the daemon when none answers. A daemon that is still exiting may
    /// hold the lock for a moment and refuse to start a successor, so the start is retried.
    pub fn connect(paths: &Paths) -> Result<Self, CliError> {
        if let Some(client) = Self::try_connect(paths)? {
            return Ok(client);
        }
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        let mut next_spawn = Instant::now();
        loop {
            if Instant::now() >= next_spawn {
                spawn_daemon(paths)?;
                next_spawn = Instant::now() + DAEMON_RESPAWN_AFTER;
            }
            std::thread::sleep(Duration::from_millis(5));
            if let Some(client) = Self::try_connect(paths)? {
                crate::output::daemon_started(paths.home());
                return Ok(client);
            }
            if Instant::now() > deadline {
                return Err(CliError::Failed(format!(
                    "the daemon did not start within {}s; see {}",
                    DAEMON_START_TIMEOUT.as_secs(),
                    paths.daemon_log().display()
                )));
            }
        }
    }

    /// After a follower's connection closed: the daemon that answers again in this process,
    /// re-executed by `pmx update` (its pid unchanged), if it does within a few seconds,
    /// with the connection that asked it (it takes the follow request next).
    fn came_back(paths: &Paths) -> Option<(Self, pmx_core::protocol::Pong)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = std::fs::read_to_string(paths.pid_file()).ok()?;
        let alive = || std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        while alive() && Instant::now() < deadline {
            if let Ok(Some(mut client)) = Self::try_connect(paths)
                && let Ok(Response::Pong(pong)) = client.request(&Request::Ping)
                && pong.daemon_pid.to_string() == pid.trim()
            {
                return Some((client, pong));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A follower's connection was `lost`: when the daemon came back in the same process
    /// (`pmx update`), says so and gives the connection to follow on; else the loss stands.
    pub fn follow_again(paths: &Paths, lost: String) -> Result<Self, CliError> {
        let Some((client, pong)) = Self::came_back(paths) else {
            return Err(CliError::Lost(lost));
        };
        eprintln!(
            "[PMX] the daemon was updated to pmx {} (pid {}): following again",
            pong.version, pong.daemon_pid
        );
        Ok(client)
    }

    /// Connects to a running daemon; `None` when none runs.
    pub fn try_connect(paths: &Paths) -> Result<Option<Self>, CliError> {
        Self::try_connect_as(paths, false)
    }

    /// Connects for `pmx update`, which a daemon of any protocol version takes: the one
    /// request is then an `UpdateRequest` (see `Hello::update`).
    pub fn try_connect_for_update(paths: &Paths) -> Result<Option<Self>, CliError> {
        Self::try_connect_as(paths, true)
    }

    fn try_connect_as(paths: &Paths, update: bool) -> Result<Option<Self>, CliError> {
        let socket = paths.socket();
        let stream = match UnixStream::connect(&socket) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Ok(None);
            }
            Err(e) => {
                return Err(CliError::Failed(format!(
                    "cannot connect to {}: {e}",
                    socket.display()
                )));
            }
        };
        check_peer(&stream, &socket)?;
        let mut client = Client { stream };
        let handshake = client
            .send(&Hello {
                version: PROTOCOL_VERSION,
                update,
            })
            .and_then(|_| client.read_body());
        let body = match handshake {
            Ok(body) => body,
            // A daemon that is exiting (killed) can still accept, then drops the connection.
            Err(CliError::Lost(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Ok(Response::Error(failure)) = frame::decode::<Response>(&body) {
            return Err(CliError::Failed(failure.message));
        }
        let _welcome: Welcome = decode(&body)?;
        Ok(Some(client))
    }

    pub fn request(&mut self, request: &Request) -> Result<Response, CliError> {
        self.send(request)?;
        decode(&self.read_body()?)
    }

    /// The one request of a connection made for `pmx update`.
    pub fn request_update(
        &mut self,
        request: &pmx_core::protocol::UpdateRequest,
    ) -> Result<Response, CliError> {
        self.send(request)?;
        decode(&self.read_body()?)
    }

    /// A request answered by a JSON document (`Jlist`): the frame is the document itself,
    /// unless the daemon refused (a `Response`, an object).
    pub fn request_document(&mut self, request: &Request) -> Result<Vec<u8>, CliError> {
        self.send(request)?;
        let body = self.read_body()?;
        if body.first() == Some(&b'[') {
            return Ok(body);
        }
        match decode(&body)? {
            Response::Error(f) => Err(crate::commands::failure(f)),
            other => Err(crate::commands::unexpected(other)),
        }
    }

    /// The next frame of a streaming answer (`history --follow`).
    pub fn next(&mut self) -> Result<Response, CliError> {
        decode(&self.read_body()?)
    }

    /// A second handle on the same connection: one thread reads a stream while another
    /// sends on it (`monit`).
    pub fn try_clone(&self) -> Result<Client, CliError> {
        let stream = self.stream.try_clone().map_err(lost)?;
        Ok(Client { stream })
    }

    pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), CliError> {
        let bytes = frame::encode(value).map_err(|e| CliError::Failed(e.to_string()))?;
        self.stream.write_all(&bytes).map_err(lost)
    }

    fn read_body(&mut self) -> Result<Vec<u8>, CliError> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).map_err(lost)?;
        let len = frame::body_len(header).map_err(|e| CliError::Failed(e.to_string()))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).map_err(lost)?;
        Ok(body)
    }
}

/// Whoever listens on the socket gets this command's environment and arguments: it must be
/// a daemon of this user (or root's), whatever the path says.
fn check_peer(stream: &UnixStream, socket: &std::path::Path) -> Result<(), CliError> {
    let peer = rustix::net::sockopt::socket_peercred(stream).map_err(|e| {
        CliError::Failed(format!("cannot tell who serves {}: {e}", socket.display()))
    })?;
    let (me, them) = (pmx_core::private::euid(), peer.uid.as_raw());
    if them == me || them == 0 {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "refusing to talk to {}: it is served by uid {them}, not by you (uid {me}) or root; check PMX_HOME",
        socket.display()
    )))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CliError> {
    frame::decode(body)
        .map_err(|e| CliError::Failed(format!("unexpected answer from the daemon: {e}")))
}

fn lost(e: std::io::Error) -> CliError {
    CliError::Lost(e.to_string())
}

/// Starts `pmx daemon` detached (own session, stdio to `pmx.log`).
fn spawn_daemon(paths: &Paths) -> Result<(), CliError> {
    let home = paths.home();
    let fail = |what: &str, e: std::io::Error| CliError::Failed(format!("cannot {what}: {e}"));
    pmx_core::private::prepare_home(home).map_err(|e| CliError::Usage(e.to_string()))?;
    let log = pmx_core::private::append(&paths.daemon_log())
        .map_err(|e| fail("open the daemon log", e))?;
    let err_log = log
        .try_clone()
        .map_err(|e| fail("open the daemon log", e))?;
    let exe = std::env::current_exe().map_err(|e| fail("find the pmx binary", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("daemon")
        .env("PMX_HOME", home)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log));
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn().map_err(|e| fail("start the daemon", e))?;
    Ok(())
}
