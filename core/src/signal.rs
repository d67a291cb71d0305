//! Signal names and numbers (Linux), so that `kill_signal`, `sendSignal` and exit statuses
//! are validated and shown by name without any OS call.

/// Linux signal numbers by name, without the `SIG` prefix.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses `SIGINT`, `sigint`, `INT` or `2` into a signal number.
pub fn parse_signal(input: &str) -> Option<i32> {
    let s = input.trim();
    if let Ok(n) = s.parse::<i32>() {
        return SIGNALS.iter().any(|&(_, v)| v == n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().find(|&&(k, _)| k == bare).map(|&(_, v)| v)
}

/// `SIGINT` for 2; `signal 40` for numbers without a name (real-time signals).
pub fn signal_name(number: i32) -> String {
    match SIGNALS.iter().find(|&&(_, v)| v == number) {
        Some((name, _)) => format!("SIG{name}"),
        None => format!("signal {number}"),
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
