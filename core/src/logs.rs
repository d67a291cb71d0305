//! Where an instance's output goes and how log files rotate: PM2's file names and options,
//! pm2-logrotate's settings, and moment.js date formats (PM2's `log_date_format`) turned into
//! strftime. Pure: the daemon's log thread and `pmx logs` both use it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::spec::AppSpec;

/// How lines are written: as they came, or one JSON object per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogType {
    #[default]
    Raw,
    Json,
}

/// Rotation of one log file (pm2-logrotate's settings, with its defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Rotate when the file reaches this size; 0: never by size.
    pub max_size_bytes: u64,
    /// Rotated files kept; older ones are removed.
    pub retain: u32,
    /// gzip rotated files.
    pub compress: bool,
    /// moment.js format of the date in rotated names (`api-out__2026-11-21_03-00-00.log`).
    pub date_format: String,
    /// A cron expression: rotate at each tick too (5 or 6 fields).
    pub interval: Option<String>,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size_bytes: 10 * 1024 * 1024,
            retain: 30,
            compress: false,
            date_format: "YYYY-MM-DD_HH-mm-ss".into(),
            interval: None,
        }
    }
}

/// An app's own rotation settings: each one given overrides the daemon's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotateOptions {
    pub max_size_bytes: Option<u64>,
    pub retain: Option<u32>,
    pub compress: Option<bool>,
    pub date_format: Option<String>,
    pub interval: Option<String>,
}

impl RotateOptions {
    /// These settings, each one not given taken from `under`.
    pub fn over(&self, under: &RotateOptions) -> RotateOptions {
        RotateOptions {
            max_size_bytes: self.max_size_bytes.or(under.max_size_bytes),
            retain: self.retain.or(under.retain),
            compress: self.compress.or(under.compress),
            date_format: (self.date_format.clone()).or_else(|| under.date_format.clone()),
            interval: self.interval.clone().or_else(|| under.interval.clone()),
        }
    }
}

impl Rotation {
    pub fn with(&self, app: &RotateOptions) -> Rotation {
        Rotation {
            max_size_bytes: app.max_size_bytes.unwrap_or(self.max_size_bytes),
            retain: app.retain.unwrap_or(self.retain),
            compress: app.compress.unwrap_or(self.compress),
            date_format: app
                .date_format
                .clone()
                .unwrap_or_else(|| self.date_format.clone()),
            interval: app.interval.clone().or_else(|| self.interval.clone()),
        }
    }
}

/// The two streams of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// The files an instance writes: each stream's own (none: discarded), and the combined one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    pub out: Option<PathBuf>,
    pub err: Option<PathBuf>,
    pub combined: Option<PathBuf>,
}

impl LogFiles {
    pub fn of(&self, stream: Stream) -> Option<&Path> {
        match stream {
            Stream::Out => self.out.as_deref(),
            Stream::Err => self.err.as_deref(),
        }
    }
}

/// `/dev/null` (or PM2's `NULL`) discards a stream.
pub fn discards(path: &str) -> bool {
    path == "/dev/null" || path.eq_ignore_ascii_case("null")
}

/// `api.log` → `api-3.log`: PM2 gives each instance its own file unless logs are merged.
fn per_instance(path: &str, id: u32) -> PathBuf {
    let p = Path::new(path);
    match (p.file_stem(), p.extension()) {
        (Some(stem), Some(ext)) => p.with_file_name(format!(
            "{}-{id}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{path}-{id}")),
    }
}

/// The files of instance `id`: `out_file`/`error_file`/`log_file` from the spec, else
/// `$PMX_HOME/logs/NAME-out.log` and `NAME-error.log`; with several instances each gets
/// `-ID` before the extension unless `merge_logs`.
pub fn log_files(spec: &AppSpec, paths: &Paths, id: u32) -> LogFiles {
    let split = spec.instances > 1 && !spec.options.merge_logs;
    let place = |given: &Option<String>, default: PathBuf| -> Option<PathBuf> {
        match given {
            Some(path) if discards(path) => None,
            Some(path) if split => Some(per_instance(path, id)),
            Some(path) => Some(PathBuf::from(path)),
            None => Some(default),
        }
    };
    let shown_id = split.then_some(id);
    LogFiles {
        out: place(&spec.options.out_file, paths.out_log(&spec.name, shown_id)),
        err: place(
            &spec.options.error_file,
            paths.error_log(&spec.name, shown_id),
        ),
        combined: match &spec.options.log_file {
            Some(path) if discards(path) => None,
            Some(path) if split => Some(per_instance(path, id)),
            Some(path) => Some(PathBuf::from(path)),
            None => None,
        },
    }
}

/// The name a file rotated at `date` (already formatted) takes: `api-out.log` →
/// `api-out__2026-11-21_03-00-00.log`.
pub fn rotated_name(path: &Path, date: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let rotated = match name.strip_suffix(".log") {
        Some(stem) => format!("{stem}__{date}.log"),
        None => format!("{name}__{date}"),
    };
    path.with_file_name(rotated)
}

/// Whether `candidate` (a file name) is a rotated copy of the file named `name`.
pub fn is_rotated_of(name: &str, candidate: &str) -> bool {
    let stem = name.strip_suffix(".log").unwrap_or(name);
    candidate
        .strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix("__"))
        .is_some_and(|rest| !rest.is_empty() && !rest.ends_with(".tmp"))
}

/// The rotated copies of `path` that exist, oldest first (by modification time, then name).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| is_rotated_of(&name, &e.file_name().to_string_lossy()))
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, e.path())
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// PM2's `time: true` prefix format.
pub const DEFAULT_DATE_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss";

/// A moment.js format (`YYYY-MM-DD HH:mm:ss.SSS Z`) as strftime (`%Y-%m-%d %H:%M:%S.%3f %:z`).
/// `[text]` is literal, as in moment.
pub fn strftime_of(moment: &str) -> String {
    const TOKENS: &[(&str, &str)] = &[
        ("YYYY", "%Y"),
        ("YY", "%y"),
        ("MMMM", "%B"),
        ("MMM", "%b"),
        ("MM", "%m"),
        ("M", "%-m"),
        ("DDDD", "%j"),
        ("DD", "%d"),
        ("Do", "%-d"),
        ("D", "%-d"),
        ("dddd", "%A"),
        ("ddd", "%a"),
        ("HH", "%H"),
        ("H", "%-H"),
        ("hh", "%I"),
        ("h", "%-I"),
        ("mm", "%M"),
        ("m", "%-M"),
        ("ss", "%S"),
        ("s", "%-S"),
        ("SSS", "%3f"),
        ("SS", "%2f"),
        ("S", "%1f"),
        ("ZZ", "%z"),
        ("Z", "%:z"),
        ("A", "%p"),
        ("a", "%P"),
        ("X", "%s"),
    ];
    let mut out = String::new();
    let mut rest = moment;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let end = rest.find(']').unwrap_or(rest.len());
            out.push_str(&rest[1..end].replace('%', "%%"));
            rest = rest.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some((token, spec)) = TOKENS.iter().find(|(t, _)| rest.starts_with(t)) {
            out.push_str(spec);
            rest = &rest[token.len()..];
            continue;
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(instances: u32) -> AppSpec {
        AppSpec {
            name: "api".into(),
            instances,
            ..AppSpec::default()
        }
    }

    #[test]
    fn files_follow_pm2_names() {
        let paths = Paths::new("/h");
        let one = log_files(&spec(1), &paths, 0);
        assert_eq!(one.out.unwrap(), Path::new("/h/logs/api-out.log"));
        assert_eq!(one.err.unwrap(), Path::new("/h/logs/api-error.log"));
        assert_eq!(one.combined, None);
        let two = log_files(&spec(2), &paths, 5);
        assert_eq!(two.out.unwrap(), Path::new("/h/logs/api-out-5.log"));
        let mut custom = spec(2);
        custom.options.out_file = Some("/var/log/api.log".into());
        custom.options.error_file = Some("/dev/null".into());
        custom.options.log_file = Some("/var/log/all".into());
        let files = log_files(&custom, &paths, 1);
        assert_eq!(files.out.unwrap(), Path::new("/var/log/api-1.log"));
        assert_eq!(files.err, None, "/dev/null discards the stream");
        assert_eq!(files.combined.unwrap(), Path::new("/var/log/all-1"));
        custom.options.merge_logs = true;
        let merged = log_files(&custom, &paths, 1);
        assert_eq!(merged.out.unwrap(), Path::new("/var/log/api.log"));
    }

    #[test]
    fn rotated_names_are_recognised() {
        let rotated = rotated_name(Path::new("/l/api-out.log"), "2026-11-21_03-00-00");
        assert_eq!(rotated, Path::new("/l/api-out__2026-11-21_03-00-00.log"));
        assert!(is_rotated_of(
            "api-out.log",
            "api-out__2026-11-21_03-00-00.log"
        ));
        assert!(is_rotated_of(
            "api-out.log",
            "api-out__2026-11-21_03-00-00.log.gz"
        ));
        assert!(!is_rotated_of("api-out.log", "api-out-1__x.log"));
        assert!(!is_rotated_of("api-out.log", "api-out.log"));
        assert!(is_rotated_of("plain", "plain__x"));
    }

    #[test]
    fn moment_formats_become_strftime() {
        assert_eq!(strftime_of("YYYY-MM-DDTHH:mm:ss"), "%Y-%m-%dT%H:%M:%S");
        assert_eq!(
            strftime_of("YYYY-MM-DD HH:mm:ss.SSS Z"),
            "%Y-%m-%d %H:%M:%S.%3f %:z"
        );
        assert_eq!(strftime_of("[at] h:mm A 100%"), "at %-I:%M %p 100%%");
    }

    #[test]
    fn app_rotation_overrides_the_daemon_s() {
        let global = Rotation::default();
        let app = RotateOptions {
            retain: Some(3),
            compress: Some(true),
            ..RotateOptions::default()
        };
        let merged = global.with(&app);
        assert_eq!(
            (merged.retain, merged.compress, merged.max_size_bytes),
            (3, true, 10 << 20)
        );
    }
}
