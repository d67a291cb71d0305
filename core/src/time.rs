//! Times as people read and write them: in the local zone with a strftime format (log
//! prefixes, history, monit), and RFC 3339 timestamps (`history --since`). One time crate
//! for the whole system, chrono, which the cron schedules use too.

use chrono::TimeZone;

use crate::Millis;

/// A time in the local zone with a strftime format (an invalid format gives the RFC 3339
/// form).
pub fn format_local(ms: Millis, format: &str) -> String {
    use std::fmt::Write;
    let Some(time) = chrono::Local.timestamp_millis_opt(ms as i64).single() else {
        return ms.to_string();
    };
    let mut out = String::new();
    if write!(out, "{}", time.format(format)).is_err() {
        out.clear();
        let _ = write!(out, "{}", time.to_rfc3339());
    }
    out
}

/// An RFC 3339 timestamp (`2026-11-21T10:00:00Z`), in ms since the epoch (0 before it).
pub fn parse_timestamp_ms(text: &str) -> Option<Millis> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(time.timestamp_millis().max(0) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_back_and_bad_formats_fall_back() {
        assert_eq!(
            parse_timestamp_ms("2026-11-21T10:00:00.250Z"),
            Some(1_795_255_200_250)
        );
        assert_eq!(
            parse_timestamp_ms("2026-11-21T11:00:00+01:00"),
            Some(1_795_255_200_000)
        );
        assert_eq!(parse_timestamp_ms("yesterday"), None);
        let shown = format_local(1_795_255_200_250, "%Y-%m-%d %H:%M:%S%.3f");
        assert_eq!(shown.len(), "2026-11-21 10:00:00.250".len(), "{shown}");
        assert!(shown.ends_with(":00.250"), "{shown}");
        assert!(
            format_local(0, "%Q").contains("1970"),
            "an invalid format: RFC 3339"
        );
    }
}
