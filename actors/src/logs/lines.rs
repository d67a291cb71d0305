//! Turning what a process wrote into what its log file gets: whole lines (a line that arrives
//! in pieces waits for its end, so a timestamp never splits it and merged files never
//! interleave half lines; a piece left without its end for a moment is written as it is, as
//! PM2 does, so `process.stderr.write('x')` shows up), each with its prefix (`time`) or as a
//! JSON object (`log_type: json`). Bytes are kept as they came: invalid UTF-8, `\r`, lines of
//! any length.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pmx_core::Millis;
use pmx_core::logs::Stream;
use serde::Serialize;

/// A partial line longer than this is written out without waiting for its end (and the file
/// may rotate after it: see `LogFile::write`).
pub const MAX_PENDING: usize = 2 * 1024 * 1024;

/// Called with every line (without its newline) when someone follows the stream.
pub type EachLine<'a> = Option<&'a mut dyn FnMut(&[u8])>;

/// How one stream's lines are written.
pub struct LineFormat {
    pub app: Arc<str>,
    pub id: u32,
    pub stream: Stream,
    /// strftime of the timestamp prefix (`time: true`, `log_date_format`).
    pub prefix: Option<String>,
    pub json: bool,
}

/// The current time, formatted at most once per millisecond.
#[derive(Default)]
pub struct Clock {
    ms: Millis,
    format: String,
    text: String,
}

impl Clock {
    pub fn now_ms() -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }

    fn stamp(&mut self, format: &str) -> &str {
        let now = Self::now_ms();
        if now != self.ms || format != self.format {
            self.ms = now;
            self.format.clear();
            self.format.push_str(format);
            self.text = pmx_core::time::format_local(now, format);
        }
        &self.text
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: &'a str,
    app: &'a str,
    instance: u32,
    stream: &'static str,
    message: &'a str,
}

/// One stream's line assembly.
pub struct Lines {
    pub format: LineFormat,
    pending: Vec<u8>,
    /// The last line written out was cut at `MAX_PENDING`: what follows continues it.
    continuing: bool,
}

impl Lines {
    pub fn new(format: LineFormat) -> Self {
        Lines {
            format,
            pending: Vec::new(),
            continuing: false,
        }
    }

    /// Adds what was read; appends every completed line, formatted, to `out`, and calls
    /// `each` with every line's bytes (without its newline).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        clock: &mut Clock,
        out: &mut Vec<u8>,
        each: &mut EachLine<'_>,
    ) {
        if !self.pending.is_empty() {
            let Some(end) = memchr::memchr(b'\n', data) else {
                self.pending.extend_from_slice(data);
                if self.pending.len() >= MAX_PENDING {
                    self.cut(clock, out, each);
                }
                return;
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&data[..=end]);
            self.emit(&line, clock, out, each);
            line.clear();
            if line.capacity() <= 64 * 1024 {
                self.pending = line; // reuse the allocation
            }
            data = &data[end + 1..];
        }
        let complete = match memchr::memrchr(b'\n', data) {
            Some(last) => last + 1,
            None => 0,
        };
        if complete > 0 {
            self.emit(&data[..complete], clock, out, each);
        }
        self.pending.extend_from_slice(&data[complete..]);
        if self.pending.len() >= MAX_PENDING {
            self.cut(clock, out, each);
        }
    }

    /// Whether a piece of a line waits for its end.
    /// The start of a line read but not written: handed to the next daemon.
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Goes on with a line another daemon started reading.
    pub fn resume(&mut self, pending: Vec<u8>) {
        self.pending = pending;
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes out the piece of a line that waits for its end: what comes next continues it.
    pub fn flush_pending(&mut self, clock: &mut Clock, out: &mut Vec<u8>, each: &mut EachLine<'_>) {
        if !self.pending.is_empty() {
            self.cut(clock, out, each);
        }
    }

    /// At the end of the stream: the last line, even without a newline (raw output keeps it
    /// that way; a prefixed line gets one, so the next run's first line starts its own).
    pub fn finish(&mut self, clock: &mut Clock, out: &mut Vec<u8>, each: &mut EachLine<'_>) {
        if !self.pending.is_empty() {
            self.cut(clock, out, each);
            if self.format.prefix.is_some() && !self.format.json {
                out.push(b'\n');
            }
        }
        self.continuing = false;
    }

    fn cut(&mut self, clock: &mut Clock, out: &mut Vec<u8>, each: &mut EachLine<'_>) {
        let part = std::mem::take(&mut self.pending);
        self.emit(&part, clock, out, each);
        self.continuing = true;
    }

    /// Writes whole lines (the last one may lack its newline only when cut or final).
    fn emit(&mut self, text: &[u8], clock: &mut Clock, out: &mut Vec<u8>, each: &mut EachLine<'_>) {
        if self.format.prefix.is_none() && !self.format.json {
            out.extend_from_slice(text);
            if let Some(each) = each.as_mut() {
                for line in split_lines(text) {
                    each(line);
                }
            }
            self.continuing = false;
            return;
        }
        for line in split_lines(text) {
            let terminated = line.len() < text.len() || text.ends_with(b"\n");
            if let Some(each) = each.as_mut() {
                each(line);
            }
            if self.format.json {
                let stamp = clock
                    .stamp(self.format.prefix.as_deref().unwrap_or("%+"))
                    .to_string();
                let message = String::from_utf8_lossy(line);
                let record = JsonLine {
                    timestamp: &stamp,
                    app: &self.format.app,
                    instance: self.format.id,
                    stream: self.format.stream.name(),
                    message: &message,
                };
                if serde_json::to_writer(&mut *out, &record).is_ok() {
                    out.push(b'\n');
                }
            } else {
                if !self.continuing
                    && let Some(format) = &self.format.prefix
                {
                    out.extend_from_slice(clock.stamp(format).as_bytes());
                    out.extend_from_slice(b": ");
                }
                out.extend_from_slice(line);
                if terminated {
                    out.push(b'\n');
                }
            }
            self.continuing = false;
        }
    }
}

/// The lines of `text`, without their newlines (a last piece without one included).
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    body.split(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: Option<&str>, json: bool) -> Lines {
        Lines::new(LineFormat {
            app: "api".into(),
            id: 3,
            stream: Stream::Err,
            prefix: prefix.map(String::from),
            json,
        })
    }

    fn run(l: &mut Lines, chunks: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (mut clock, mut out, mut seen) = (Clock::default(), Vec::new(), Vec::new());
        for chunk in chunks {
            l.feed(
                chunk,
                &mut clock,
                &mut out,
                &mut Some(&mut |line: &[u8]| seen.push(line.to_vec())),
            );
        }
        l.finish(
            &mut clock,
            &mut out,
            &mut Some(&mut |line: &[u8]| seen.push(line.to_vec())),
        );
        (out, seen)
    }

    #[test]
    fn raw_bytes_arrive_exactly_and_whole() {
        let input: &[&[u8]] = &[b"a\xff\r", b"b\nc", b"d\n\ne", b"nd"];
        let (out, seen) = run(&mut lines(None, false), input);
        assert_eq!(out, b"a\xff\rb\ncd\n\nend");
        assert_eq!(
            seen,
            vec![
                b"a\xff\rb".to_vec(),
                b"cd".to_vec(),
                vec![],
                b"end".to_vec()
            ]
        );
    }

    #[test]
    fn a_timestamp_never_splits_a_line() {
        let (out, _) = run(
            &mut lines(Some("T"), false),
            &[b"hel", b"lo\nwor", b"ld\n", b"last"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "T: hello\nT: world\nT: last\n"
        );
    }

    #[test]
    fn a_waiting_piece_is_written_once_and_continued_without_a_prefix() {
        let mut l = lines(Some("T"), false);
        let (mut clock, mut out) = (Clock::default(), Vec::new());
        l.feed(b"errwrite", &mut clock, &mut out, &mut None);
        assert!(out.is_empty() && l.has_pending());
        l.flush_pending(&mut clock, &mut out, &mut None);
        assert!(!l.has_pending());
        l.feed(b"more\nnext\n", &mut clock, &mut out, &mut None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "T: errwritemore\nT: next\n"
        );
    }

    #[test]
    fn json_lines_carry_the_app_and_the_stream() {
        let (out, _) = run(&mut lines(Some("T"), true), &[b"x \"q\"\n"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"timestamp\":\"T\",\"app\":\"api\",\"instance\":3,\"stream\":\"err\",\"message\":\"x \\\"q\\\"\"}\n"
        );
    }

    #[test]
    fn a_huge_line_is_cut_once_and_continued_without_a_prefix() {
        let big = vec![b'x'; MAX_PENDING + 10];
        let (out, _) = run(&mut lines(Some("T"), false), &[&big, b"y\n"]);
        assert!(out.starts_with(b"T: xxx"));
        assert_eq!(out.len(), 3 + MAX_PENDING + 10 + 2, "one prefix only");
        assert!(out.ends_with(b"xy\n"));
    }
}
