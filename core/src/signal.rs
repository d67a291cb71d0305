//! Signal names and numbers (Linux), so that `kill_signal`, `sendSignal` and exit statuses
//! are validated and shown by name without any OS call.

/// Linux signal numbers by name.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// Parses `SIGINT`, `sigint`, `INT` or `2` into a signal number.
pub fn parse_signal(input: &str) -> Option<i32> {
    let s = input.trim();
    if let Ok(n) = s.parse::<i32>() {
        return SIGNALS.iter().any(|&(_, v)| v == n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|&&(k, _)| k.strip_prefix("SIG") == Some(bare))
        .map(|&(_, v)| v)
}

/// `SIGINT` for 2; `signal 40` for numbers without a name (real-time signals).
pub fn signal_name(number: i32) -> std::borrow::Cow<'static, str> {
    match SIGNALS.iter().find(|&&(_, v)| v == number) {
        Some((name, _)) => (*name).into(),
        None => format!("signal {number}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        assert_eq!(parse_signal("SIGINT"), Some(2));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("USR2"), Some(12));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("99"), None);
        for &(_, n) in SIGNALS {
            assert_eq!(parse_signal(&signal_name(n)), Some(n));
        }
    }
}
