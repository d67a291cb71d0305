//! PM2's cluster mode for Node apps: the daemon is its instances' cluster primary. Each
//! instance runs as a Node cluster worker (`NODE_UNIQUE_ID`, Node's IPC channel on
//! `NODE_CHANNEL_FD`), so `server.listen(port)` asks the daemon for the socket. The daemon
//! binds each address once, keeps it for the app's life and hands every instance the same
//! listening socket (Node's shared-handle scheduling): the kernel spreads the connections,
//! and the port stays open across restarts and reloads. Apps need no change, and
//! `cluster.isWorker` is true in them as it is under PM2.
//!
//! Node's channel carries one JSON value per line; a handle travels as `SCM_RIGHTS` with
//! the line that names it (`NODE_HANDLE`). Fds a worker sends are dropped by the plain read.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use pmx_core::listen::ListenAddr;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, Interest};
use tokio::net::UnixStream;

use super::AppActor;
use super::talk::{Heard, Word};
use crate::listen::{ListenHub, Stale};

/// A worker's message is a line of JSON; a longer one is skipped as it streams in.
const MESSAGE_CAP: usize = 64 * 1024;

/// Addresses one app's workers may have the daemon hold: an app that asks for more (a new
/// port or path at every call) is told `EMFILE` rather than grow the daemon without bound.
const MAX_ADDRESSES: usize = 64;

/// The sockets an app's workers asked for, by address, held while the app exists (a
/// restarted or reloaded instance gets the same one), with the first worker's server data
/// (TLS ticket keys), which every worker shares as under Node's own primary.
#[derive(Clone, Default)]
pub struct ClusterPorts(Arc<Mutex<HashMap<String, Held>>>);

/// One socket the workers share, and the server data they get with it.
type Held = (Arc<OwnedFd>, Value);

impl ClusterPorts {
    /// Every socket held, by address, with its server data, for `pmx update` (the sockets
    /// themselves are handed over with the daemon's other listen sockets).
    pub fn handed(&self, app: &str) -> Vec<pmx_core::handoff::HandedClusterPort> {
        let ports = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ports
            .iter()
            .map(|(addr, (_, data))| pmx_core::handoff::HandedClusterPort {
                app: app.to_string(),
                addr: addr.clone(),
                data: data.clone(),
            })
            .collect()
    }

    /// A socket a previous daemon held for the app's workers (`pmx update`): later workers
    /// get this very socket, which the running ones listen on.
    pub fn adopt(&self, addr: String, fd: Arc<OwnedFd>, data: Value) {
        let mut ports = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ports.insert(addr, (fd, data));
    }
}

/// What a worker's channel needs to answer it.
pub struct Primary {
    pub key: u64,
    pub addr: Addr<AppActor>,
    pub ports: ClusterPorts,
    pub hub: ListenHub,
    /// The sockets the instance inherited, by the fd number it has them at.
    pub inherited: Vec<(i32, Arc<OwnedFd>)>,
}

/// The variables that make `node` a cluster worker talking on fd `fd`.
pub fn worker_env(fd: i32, worker_id: u64) -> Vec<(String, String)> {
    vec![
        ("NODE_CHANNEL_FD".into(), fd.to_string()),
        ("NODE_CHANNEL_SERIALIZATION_MODE".into(), "json".into()),
        ("NODE_UNIQUE_ID".into(), worker_id.to_string()),
    ]
}

/// Serves one worker's channel until it closes.
pub async fn serve(mut stream: UnixStream, primary: Primary) {
    // Borrowed halves: an owned write half shuts the socket down when dropped, which a worker
    // reads as its primary gone (and exits), even while `pmx update` hands a copy over.
    let (read, write) = stream.split();
    let mut reader = tokio::io::BufReader::new(read);
    let mut line = Vec::new();
    let mut pace = pmx_core::agent::Pace::default();
    loop {
        let Ok(available) = reader.fill_buf().await else {
            return;
        };
        if available.is_empty() {
            return;
        }
        let (used, done) = crate::logs::take_line_piece(available, &mut line, MESSAGE_CAP + 1);
        reader.consume(used);
        if !done {
            continue;
        }
        let message = std::mem::take(&mut line);
        if message.len() > MESSAGE_CAP {
            continue;
        }
        let Ok(message) = serde_json::from_slice::<Value>(&message) else {
            continue;
        };
        // Paced before its data is copied out (Node's IPC has to be parsed to be told apart).
        let agent = pmx_core::agent::AgentMessage::kind_of(&message).is_some();
        if agent && !pace.admit(crate::clock::now_ms()) {
            continue;
        }
        match answer(&message, &primary) {
            Answer::Nothing => {}
            Answer::Heard(word) => primary.addr.do_send(Heard {
                key: primary.key,
                word,
            }),
            Answer::Reply(reply, handle) => {
                if send(write.as_ref(), &reply, handle.as_deref())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

enum Answer {
    Nothing,
    Heard(Word),
    Reply(Value, Option<Arc<OwnedFd>>),
}

fn answer(message: &Value, primary: &Primary) -> Answer {
    if message.as_str() == Some("ready") {
        return Answer::Heard(Word::SentReady);
    }
    if let Some(agent) = pmx_core::agent::AgentMessage::of(message) {
        return Answer::Heard(Word::Agent(Box::new(agent)));
    }
    match message["cmd"].as_str() {
        // A handle the app sent us: acknowledged (and dropped), or Node queues every later
        // message behind it.
        Some("NODE_HANDLE") => Answer::Reply(json!({ "cmd": "NODE_HANDLE_ACK" }), None),
        Some("NODE_CLUSTER") => match message["act"].as_str() {
            Some("queryServer") => query_server(message, primary),
            Some("online") => Answer::Heard(Word::WorkerOnline),
            Some("listening") => Answer::Heard(Word::Listening),
            // `worker.disconnect()` waits for this acknowledgement before it disconnects.
            Some("exitedAfterDisconnect") => Answer::Reply(
                json!({ "cmd": "NODE_CLUSTER", "ack": message["seq"] }),
                None,
            ),
            _ => Answer::Nothing,
        },
        _ => Answer::Nothing,
    }
}

/// A worker's `listen`: the shared socket, or the errno Node turns into the app's error.
fn query_server(message: &Value, primary: &Primary) -> Answer {
    let index = message["index"].as_u64().unwrap_or(0);
    let reply = |errno: i32, key: &str, data: Value| {
        json!({
            "cmd": "NODE_CLUSTER",
            "ack": message["seq"],
            "errno": errno,
            "key": key,
            "data": data,
        })
    };
    match socket_for(message, primary).and_then(nonblocking) {
        Ok((name, fd, data)) => {
            // Unique per worker and listen call: the worker keeps its handles by this key.
            let key = format!("{name}:{index}");
            let wrapped = json!({
                "cmd": "NODE_HANDLE",
                "type": "net.Native",
                "msg": reply(0, &key, data),
            });
            Answer::Reply(wrapped, Some(fd))
        }
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            Answer::Reply(reply(-errno, "", Value::Null), None)
        }
    }
}

/// Makes the shared socket non-blocking, as Node's own primary hands it over. The flag
/// belongs to the socket, not to one fd: left blocking, a worker woken with the others for
/// a connection one of them took would block in `accept` with requests in hand.
fn nonblocking(held: (String, Arc<OwnedFd>, Value)) -> io::Result<(String, Arc<OwnedFd>, Value)> {
    rustix::io::ioctl_fionbio(&*held.1, true)?;
    Ok(held)
}

/// The socket a `queryServer` asks for: one the instance inherited (by its fd), or the
/// app's socket for that address, bound now if it is the first to ask.
fn socket_for(message: &Value, primary: &Primary) -> io::Result<(String, Arc<OwnedFd>, Value)> {
    let unsupported = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
    if let Some(fd) = message["fd"].as_i64() {
        let found = primary
            .inherited
            .iter()
            .find(|(at, _)| i64::from(*at) == fd);
        return match found {
            Some((_, socket)) => Ok((format!("fd{fd}"), socket.clone(), message["data"].clone())),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
    }
    let candidates = match message["addressType"].as_i64() {
        Some(-1) => {
            let path = message["address"].as_str().ok_or_else(unsupported)?;
            vec![ListenAddr::parse(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?]
        }
        Some(4 | 6) => {
            let port = message["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
            match message["address"].as_str() {
                Some(ip) => {
                    let ip: IpAddr = ip
                        .parse()
                        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                    vec![ListenAddr::Tcp(SocketAddr::new(ip, port))]
                }
                // As Node's primary: every interface, IPv6 (dual-stack) where it can.
                None => vec![
                    ListenAddr::Tcp(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)),
                    ListenAddr::parse(&port.to_string())
                        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
                ],
            }
        }
        // UDP (`dgram` in a worker) is not shared.
        _ => return Err(unsupported()),
    };
    let mut ports = primary.ports.0.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = unsupported();
    for addr in candidates {
        let name = addr.to_string();
        if let Some((fd, data)) = ports.get(&name) {
            return Ok((name, fd.clone(), data.clone()));
        }
        if ports.len() >= MAX_ADDRESSES {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        match primary.hub.share(&addr, Stale::Keep) {
            Ok(fd) => {
                let data = message["data"].clone();
                ports.insert(name.clone(), (fd.clone(), data.clone()));
                return Ok((name, fd, data));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Writes one message, with `handle` as `SCM_RIGHTS` on its first byte.
async fn send(stream: &UnixStream, message: &Value, handle: Option<&OwnedFd>) -> io::Result<()> {
    let bytes = format!("{message}\n").into_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let fds = handle.map(|h| [h.as_fd()]);
    let sent = stream
        .async_io(Interest::WRITABLE, || {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if let Some(fds) = &fds {
                control.push(SendAncillaryMessage::ScmRights(fds));
            }
            let iov = [IoSlice::new(&bytes)];
            rustix::net::sendmsg(stream, &iov, &mut control, SendFlags::NOSIGNAL)
                .map_err(io::Error::from)
        })
        .await?;
    let mut rest = &bytes[sent..];
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
