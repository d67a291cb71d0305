//! The listening sockets the daemon holds for apps. Bound once per address and shared by
//! every actor that asks for it (an app replaced by `up` hands its socket to the new actor):
//! the socket stays open across restarts and reloads, so connections wait in the kernel's
//! queue instead of being refused. It closes when no actor holds it any more.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::{Arc, Mutex, Weak};

use pmx_core::listen::ListenAddr;

#[derive(Clone, Default)]
pub struct ListenHub {
    bound: Arc<Mutex<HashMap<String, Weak<OwnedFd>>>>,
}

impl ListenHub {
    /// The socket listening on `addr`, bound now if no app holds it yet.
    pub fn acquire(&self, addr: &ListenAddr) -> Result<Arc<OwnedFd>, String> {
        self.share(addr, Stale::Replace)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    }

    /// As `acquire`, with the OS's error as it is (a cluster worker is told its errno).
    pub fn share(&self, addr: &ListenAddr, stale: Stale) -> io::Result<Arc<OwnedFd>> {
        let key = addr.to_string();
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = bound.get(&key).and_then(Weak::upgrade) {
            return Ok(fd);
        }
        let fd = Arc::new(bind(addr, stale)?);
        bound.retain(|_, w| w.strong_count() > 0);
        bound.insert(key, Arc::downgrade(&fd));
        Ok(fd)
    }
}

impl ListenHub {
    /// Every socket held now, by address (`pmx update` hands them over).
    pub fn held(&self) -> Vec<(String, Arc<OwnedFd>)> {
        let bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        bound
            .iter()
            .filter_map(|(addr, w)| Some((addr.clone(), w.upgrade()?)))
            .collect()
    }

    /// A socket a previous daemon handed over, served to the next `acquire` of its
    /// address; the caller holds it until the apps that listen on it have taken it.
    pub fn adopt(&self, addr: String, fd: OwnedFd) -> Arc<OwnedFd> {
        let fd = Arc::new(fd);
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        bound.insert(addr, Arc::downgrade(&fd));
        fd
    }
}

/// What becomes of a socket file already at a Unix address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// A declared `listen` path: a socket file there is left by an earlier daemon, replaced.
    Replace,
    /// A path an app asked for at run time (a cluster worker's `listen`): the file may be a
    /// live socket of another program, so it is `EADDRINUSE`, as Node's own primary says.
    Keep,
}

fn bind(addr: &ListenAddr, stale: Stale) -> io::Result<OwnedFd> {
    match addr {
        // std sets SO_REUSEADDR, so a daemon restarted at once binds again.
        ListenAddr::Tcp(a) => std::net::TcpListener::bind(a).map(OwnedFd::from),
        ListenAddr::Unix(path) => {
            // A socket file is replaced when `stale` says so; any other file never is.
            let socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if socket && stale == Stale::Replace {
                std::fs::remove_file(path)?;
            }
            std::os::unix::net::UnixListener::bind(path).map(OwnedFd::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_per_address_while_held() {
        let hub = ListenHub::default();
        let addr = ListenAddr::parse("127.0.0.1:0").unwrap();
        // Port 0 binds anew each time: use a real port from a first bind.
        let first = hub.acquire(&addr).unwrap();
        let port = std::net::TcpListener::from(first.try_clone().unwrap())
            .local_addr()
            .unwrap()
            .port();
        let addr = ListenAddr::parse(&format!("127.0.0.1:{port}")).unwrap();
        drop(first);
        let a = hub.acquire(&addr).unwrap();
        let b = hub.acquire(&addr).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        // Released: bound again, and refused while someone else holds the port.
        let c = hub.acquire(&addr).unwrap();
        let other = ListenHub::default();
        assert!(
            other
                .acquire(&addr)
                .unwrap_err()
                .contains("cannot listen on")
        );
        drop(c);
    }
}
