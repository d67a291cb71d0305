//! The last lines of a log file, reading back into its rotated copies (gzipped or not) when
//! the file itself holds fewer: `pmx logs --lines N` shows N lines whenever they exist. Here,
//! beside the log naming it reads, for the CLI (`pmx logs`) and the daemon (dashboard, monit)
//! alike; and the capped line reader every line reader of the daemon steps with.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::logs::rotated_files;

/// Bytes read at a time walking a file backwards.
const BLOCK: u64 = 64 * 1024;
/// A line longer than this is shown cut (a newline-less flood is one huge "line").
const LINE_CAP: usize = 256 * 1024;
/// At most this much of one file is read for a tail, however many lines were asked for:
/// fewer lines come back when they are that long.
pub const TAIL_BYTES: usize = 16 * 1024 * 1024;

/// Up to `n` last lines of `path` and, before it, of its rotated copies; oldest first,
/// without their newlines.
pub fn last_lines(path: &Path, n: usize) -> Vec<Vec<u8>> {
    last_lines_within(path, n, TAIL_BYTES)
}

/// `last_lines`, reading at most about `budget` bytes of the current file.
pub fn last_lines_within(path: &Path, n: usize, budget: usize) -> Vec<Vec<u8>> {
    let mut lines = tail_of_file(path, n, budget);
    for older in rotated_files(path).iter().rev() {
        if lines.len() >= n {
            break;
        }
        let mut earlier = if older.extension().is_some_and(|e| e == "gz") {
            tail_of_gzip(older, n - lines.len())
        } else {
            tail_of_file(older, n - lines.len(), budget)
        };
        earlier.append(&mut lines);
        lines = earlier;
    }
    lines
}

/// The last `n` lines of a plain file, reading only its end.
fn tail_of_file(path: &Path, n: usize, budget: usize) -> Vec<Vec<u8>> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(size) = file.seek(SeekFrom::End(0)) else {
        return Vec::new();
    };
    if n == 0 || size == 0 {
        return Vec::new();
    }
    let mut end = size;
    let mut tail: Vec<u8> = Vec::new();
    let budget = (n.saturating_add(1)).saturating_mul(LINE_CAP).min(budget);
    // Enough when it holds n newlines before the final one (or the file's start), or when
    // the budget is spent.
    loop {
        let start = end.saturating_sub(BLOCK);
        let mut block = vec![0; (end - start) as usize];
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_exact(&mut block).is_err() {
            break;
        }
        block.extend_from_slice(&tail);
        tail = block;
        end = start;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if start == 0 || tail.len() >= budget || memchr::memchr_iter(b'\n', body).count() >= n {
            break;
        }
    }
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let mut lines: Vec<Vec<u8>> = body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    // The first piece may be the end of a line that started before what was read: dropped,
    // unless the budget ran out before n lines (then it is the end of a huge line, shown).
    if end > 0 && lines.len() > n {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    let mut lines = lines.split_off(skip);
    lines.iter_mut().for_each(|l| l.truncate(LINE_CAP));
    lines
}

/// Reads one line (up to `\n`, which is consumed, not kept), keeping at most `cap` bytes of
/// it: the rest is skipped without being held. 0 at the end of the input.
fn read_capped_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read);
        }
        let (used, done) = take_line_piece(available, line, cap);
        reader.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

/// Adds to `line` what `available` holds of it, up to `cap` bytes in all (the rest is
/// skipped); returns how many bytes were used and whether the line ended (its `\n` used,
/// not kept). The step of every capped line reader, blocking or not.
pub fn take_line_piece(available: &[u8], line: &mut Vec<u8>, cap: usize) -> (usize, bool) {
    let (used, done) = match memchr::memchr(b'\n', available) {
        Some(at) => (at + 1, true),
        None => (available.len(), false),
    };
    let text = &available[..if done { used - 1 } else { used }];
    let room = cap.saturating_sub(line.len());
    line.extend_from_slice(&text[..text.len().min(room)]);
    (used, done)
}

fn tail_of_gzip(path: &Path, n: usize) -> Vec<Vec<u8>> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut kept: VecDeque<Vec<u8>> = VecDeque::with_capacity(n + 1);
    let mut line = Vec::new();
    while let Ok(read) = read_capped_line(&mut reader, &mut line, LINE_CAP) {
        if read == 0 {
            break;
        }
        kept.push_back(std::mem::take(&mut line));
        if kept.len() > n {
            kept.pop_front();
        }
    }
    kept.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_exactly_n_lines_across_rotations() {
        let dir = std::env::temp_dir().join(format!("pmx-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let current = dir.join("api-out.log");
        let old = dir.join("api-out__2020-01-01_00-00-00.log.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&old).unwrap(), Default::default());
        gz.write_all(b"r1\nr2\nr3\n").unwrap();
        gz.finish().unwrap();
        let long = "x".repeat(100_000);
        std::fs::write(&current, format!("{long}\nc2\nc3")).unwrap();
        let text = |v: Vec<Vec<u8>>| -> Vec<String> {
            v.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        };
        assert_eq!(text(last_lines(&current, 2)), ["c2", "c3"]);
        assert_eq!(text(last_lines(&current, 3))[0].len(), 100_000);
        assert_eq!(
            text(last_lines(&current, 5)),
            ["r2", "r3", &long, "c2", "c3"]
        );
        assert_eq!(last_lines(&current, 50).len(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newline_less_file_is_tailed_within_the_budget() {
        let dir = std::env::temp_dir().join(format!("pmx-tail-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flood = dir.join("flood-out.log");
        std::fs::write(&flood, vec![b'x'; 40 * 1024 * 1024]).unwrap();
        let lines = last_lines(&flood, 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LINE_CAP, "cut, and never the whole file");
        let many = last_lines(&flood, 1000);
        assert!(many.len() <= 1 && many.iter().all(|l| l.len() <= LINE_CAP));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_capped_line_reader_skips_what_is_beyond_the_cap() {
        let text = format!("{}\nshort\nend", "y".repeat(100));
        let mut reader = BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while read_capped_line(&mut reader, &mut line, 10).unwrap() > 0 {
            lines.push(String::from_utf8(std::mem::take(&mut line)).unwrap());
        }
        assert_eq!(lines, ["y".repeat(10), "short".into(), "end".into()]);
    }
}
