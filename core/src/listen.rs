//! Where an app listens when the daemon holds its socket (`listen: 3000`,
//! `"127.0.0.1:8080"`, `"/run/app.sock"`), and the HTTP health check's address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// One listening address the daemon binds for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(String),
}

impl ListenAddr {
    /// `3000` (every IPv4 interface, as `server.listen(3000)` would), `HOST:PORT`,
    /// `[V6]:PORT`, or an absolute path (optionally `unix:PATH`) for a Unix socket.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(path) = text
            .strip_prefix("unix:")
            .or(Some(text).filter(|t| t.starts_with('/')))
        {
            if !path.starts_with('/') {
                return Err(format!(
                    "listen `{text}`: a Unix socket path must be absolute"
                ));
            }
            // sockaddr_un holds 108 bytes with the terminating NUL.
            if path.len() > 107 {
                return Err(format!(
                    "listen `{text}`: a Unix socket path is at most 107 bytes"
                ));
            }
            return Ok(ListenAddr::Unix(path.to_string()));
        }
        if let Ok(port) = text.parse::<u16>() {
            return Ok(ListenAddr::Tcp(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port,
            )));
        }
        text.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|_| {
                format!(
                    "listen `{text}`: expected a port (3000), HOST:PORT, [V6]:PORT or a socket path"
                )
            })
    }

    /// The TCP port, which apps find in `PORT`.
    pub fn port(&self) -> Option<u16> {
        match self {
            ListenAddr::Tcp(a) => Some(a.port()),
            ListenAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// An `http://HOST:PORT/PATH` URL, the only kind a health check requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `HOST:PORT`, as connected to and sent in `Host`.
    pub authority: String,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("health url `{url}`: only http:// URLs are checked"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        if authority.starts_with(':') {
            return Err(format!("health url `{url}`: no host"));
        }
        Ok(HttpUrl {
            authority,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddr::parse("3000").unwrap().to_string(),
            "0.0.0.0:3000"
        );
        assert_eq!(
            ListenAddr::parse("127.0.0.1:8080").unwrap().port(),
            Some(8080)
        );
        assert_eq!(
            ListenAddr::parse("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert_eq!(
            ListenAddr::parse("/tmp/a.sock").unwrap(),
            ListenAddr::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("unix:/tmp/a.sock").unwrap().to_string(),
            "unix:/tmp/a.sock"
        );
        for bad in ["", "70000", "localhost", "unix:rel.sock", "host:"] {
            assert!(ListenAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(ListenAddr::parse(&format!("/{}", "x".repeat(120))).is_err());
    }

    #[test]
    fn health_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:3000/health?x=1").unwrap();
        assert_eq!(u.authority, "127.0.0.1:3000");
        assert_eq!(u.path, "/health?x=1");
        assert_eq!(HttpUrl::parse("http://h").unwrap().authority, "h:80");
        assert!(HttpUrl::parse("https://h/").is_err());
        assert!(HttpUrl::parse("http://:80/").is_err());
    }
}
