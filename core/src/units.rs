//! Parsing of the human units users type: durations (`1500`, `1.5s`, `2m`) and sizes (`512M`).
//! A bare number is milliseconds for a duration and bytes for a size, as in PM2.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid {what} `{input}`: expected {expected}")]
pub struct UnitError {
    what: &'static str,
    input: String,
    expected: &'static str,
}

/// A cron expression as the `cron` crate reads it (seconds first): PM2's 5 fields (minute
/// first) get `0` seconds, 6 fields are kept; another count is `Err(count)`. Day-of-week
/// numbers are POSIX's (0 or 7 = Sunday, 1 = Monday) and become the crate's (1 = Sunday), so
/// `0 3 * * 1` means Monday 03:00 as it does for PM2.
pub fn six_field_cron(expr: &str) -> Result<String, usize> {
    let mut fields: Vec<String> = expr.split_whitespace().map(String::from).collect();
    match fields.len() {
        5 => fields.insert(0, "0".into()),
        6 => {}
        n => return Err(n),
    }
    fields[5] = crate_weekdays(&fields[5]);
    Ok(fields.join(" "))
}

/// 5 fields (minute first) or 6 (seconds first), as PM2 accepts; errors name `key`.
pub fn validate_cron(key: &str, expr: &str) -> Result<String, String> {
    let six = six_field_cron(expr)
        .map_err(|n| format!("{key}: expected 5 or 6 fields, found {n} in {expr:?}"))?;
    six.parse::<cron::Schedule>()
        .map(|_| expr.to_string())
        .map_err(|e| format!("{key}: invalid expression {expr:?}: {e}"))
}

/// Rewrites a POSIX day-of-week field for the `cron` crate, item by item (`1-5`, `0,6`,
/// `*/2`, `MON-FRI`); a range ending on Sunday (`5-7`) is split, as the crate does not wrap.
fn crate_weekdays(field: &str) -> String {
    let day = |n: &str| match n.parse::<u8>() {
        Ok(7) | Ok(0) => "1".to_string(),
        Ok(d) => (d + 1).to_string(),
        Err(_) => n.to_string(),
    };
    field
        .split(',')
        .map(|item| {
            let (base, step) = match item.split_once('/') {
                Some((b, s)) => (b, Some(s)),
                None => (item, None),
            };
            let base = match base.split_once('-') {
                Some((a, "7")) if step.is_none() && a != "0" && a != "7" => {
                    return format!("{}-7,1", day(a));
                }
                Some((a, b)) => format!("{}-{}", day(a), day(b)),
                None => day(base),
            };
            match step {
                Some(s) => format!("{base}/{s}"),
                None => base,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits `"1.5s"` into `(1.5, "s")`.
fn split_number(input: &str) -> Option<(f64, &str)> {
    let s = input.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..end].parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, s[end..].trim()))
}

/// Parses a duration into milliseconds: `1500`, `250ms`, `1.5s`, `2m`, `1h`, `1d`.
pub fn parse_duration_ms(input: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        what: "duration",
        input: input.to_string(),
        expected: "a number of milliseconds or a number with ms, s, m, h or d (e.g. 1500, 1.5s, 2m)",
    };
    let (number, unit) = split_number(input).ok_or_else(err)?;
    let factor = match unit {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(err()),
    };
    let ms = number * factor;
    if ms > u64::MAX as f64 / 2.0 {
        return Err(err());
    }
    Ok(ms.round() as u64)
}

/// Parses a size into bytes: `1024`, `10K`, `512M`, `1.5G` (powers of 1024, `B` suffix optional).
pub fn parse_size_bytes(input: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        what: "size",
        input: input.to_string(),
        expected: "a number of bytes or a number with K, M or G (e.g. 512M)",
    };
    let (number, unit) = split_number(input).ok_or_else(err)?;
    let factor = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = number * factor;
    if bytes > u64::MAX as f64 / 2.0 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// A duration as configs write it, exactly: `2m`, `30s`, `1600ms` (what
/// `parse_duration_ms` reads back).
pub fn format_duration_ms(ms: u64) -> String {
    match ms {
        ms if ms > 0 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        ms if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// Renders a duration the way PM2's `uptime` column does: `45s`, `12m`, `3h`, `2D`.
pub fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}D", s / 86400),
    }
}

/// Parses a rate of growth into bytes per hour: `50M/h`, `1G/d`, `2M/m`, `100k/s`.
pub fn parse_rate_per_hour(input: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        what: "rate",
        input: input.to_string(),
        expected: "a size per time unit, e.g. 50M/h, 1G/d, 2M/m",
    };
    let (size, per) = input.split_once('/').ok_or_else(err)?;
    let bytes = parse_size_bytes(size).map_err(|_| err())? as f64;
    let per_hour = match per.trim() {
        "s" | "sec" => bytes * 3600.0,
        "m" | "min" => bytes * 60.0,
        "h" | "hour" => bytes,
        "d" | "day" => bytes / 24.0,
        _ => return Err(err()),
    };
    Ok(per_hour as u64)
}

/// Renders a byte count the way PM2's `mem` column does: `12.3mb`.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}b")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1}kb", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1}mb", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1}gb", b / 1024.0 / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_get_their_seconds_field() {
        assert_eq!(six_field_cron("0 3 * * *"), Ok("0 0 3 * * *".to_string()));
        // POSIX days (1 = Monday, 0 and 7 = Sunday) in the crate's numbering (1 = Sunday).
        assert_eq!(six_field_cron("0 3 * * 1").as_deref(), Ok("0 0 3 * * 2"));
        assert_eq!(
            six_field_cron("0 3 * * 0,7").as_deref(),
            Ok("0 0 3 * * 1,1")
        );
        assert_eq!(
            six_field_cron("0 3 * * 1-5").as_deref(),
            Ok("0 0 3 * * 2-6")
        );
        assert_eq!(
            six_field_cron("0 3 * * 5-7").as_deref(),
            Ok("0 0 3 * * 6-7,1")
        );
        assert_eq!(
            six_field_cron("0 3 * * MON").as_deref(),
            Ok("0 0 3 * * MON")
        );
        assert_eq!(
            six_field_cron("*/5 0 3 * * *"),
            Ok("*/5 0 3 * * *".to_string())
        );
        assert_eq!(six_field_cron("* *"), Err(2));
    }

    #[test]
    fn rates_are_per_hour() {
        assert_eq!(parse_rate_per_hour("50M/h"), Ok(50 << 20));
        assert_eq!(parse_rate_per_hour("1M/m"), Ok(60 << 20));
        assert_eq!(parse_rate_per_hour("24k/d"), Ok(1024));
        assert!(parse_rate_per_hour("50M").is_err());
        assert!(parse_rate_per_hour("50M/week").is_err());
    }

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration_ms("1500"), Ok(1500));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms(" 1h "), Ok(3_600_000));
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in ["", "s", "-1", "1x", "1.2.3s", "nan", "1e400"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_accept_units() {
        assert_eq!(parse_size_bytes("1024"), Ok(1024));
        assert_eq!(parse_size_bytes("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_size_bytes("1GB"), Ok(1 << 30));
        assert!(parse_size_bytes("12Q").is_err());
    }

    #[test]
    fn uptime_is_rendered_like_pm2() {
        assert_eq!(format_uptime(59_000), "59s");
        assert_eq!(format_uptime(120_000), "2m");
        assert_eq!(format_uptime(7_200_000), "2h");
        assert_eq!(format_uptime(2 * 86_400_000), "2D");
    }
}
