//! Writing to stdout where a closed pipe (`pmx jlist | head`) ends the program quietly with 0.

use std::io::Write;

pub fn print(text: &str) {
    print_bytes(text.as_bytes());
}

pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

pub fn println(text: &str) {
    print(&format!("{text}\n"));
}

/// Whether a command says so when it had to start the daemon (as PM2's "Spawning PM2
/// daemon"): verbs whose output is for people; never those whose output is data (`jlist`).
static ANNOUNCE_DAEMON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn announce_daemon_start(on: bool) {
    ANNOUNCE_DAEMON.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn daemon_started(home: &std::path::Path) {
    if ANNOUNCE_DAEMON.load(std::sync::atomic::Ordering::Relaxed) {
        say(&format!("started the daemon in {}", home.display()));
    }
}

/// A `[PMX] ...` message line, prefixed with the time when `PMX_LOG_DATE_FORMAT` (or PM2's
/// `PM2_LOG_DATE_FORMAT`) holds a moment.js format, as PM2 prefixes its messages.
pub fn say(message: &str) {
    let stamp = ["PMX_LOG_DATE_FORMAT", "PM2_LOG_DATE_FORMAT"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .map(|moment| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as pmx_core::Millis);
            pmx_core::time::format_local(now, &pmx_core::logs::strftime_of(&moment))
        });
    println(&said(message, stamp.as_deref()));
}

fn said(message: &str, stamp: Option<&str>) -> String {
    match stamp {
        Some(stamp) => format!("{stamp}: [PMX] {message}"),
        None => format!("[PMX] {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_take_the_date_prefix_as_pm2s_do() {
        assert_eq!(said("saved", None), "[PMX] saved");
        assert_eq!(
            said("saved", Some("2026-11-30 09:05")),
            "2026-11-30 09:05: [PMX] saved"
        );
    }
}
