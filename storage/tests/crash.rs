//! The crash harness: a writer process appends and flushes events and says after each flush
//! how far the journal is durable; the test SIGKILLs it at a random moment, then (in a second
//! pass) also cuts a random number of bytes off the tail of the data file. Reopened, the
//! journal holds every event the writer was told is durable, each the event written at that
//! sequence number, or it says it lost some (a `Recovery` whose expected head covers them) and
//! what it kept is an exact prefix. The writer is this test binary run again (`writer`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pmx_core::event::{Cause, Event, EventKind, NewEvent};
use pmx_storage::{Journal, SledJournal, open_checked};

/// Set (to the journal's path) in the writer's environment.
const WRITER_ENV: &str = "PMX_CRASH_WRITER";
const ROUNDS: usize = 6;

/// What the writer puts at `seq`: the verb names the sequence number it expects.
fn verb_at(seq: u64) -> String {
    format!("write {seq}")
}

fn event(seq: u64) -> NewEvent {
    NewEvent {
        app: "api".into(),
        instance: None,
        kind: EventKind::Command { verb: verb_at(seq) },
        cause: Cause::Boot,
    }
}

/// The writer: appends batches of 1 to 8 events forever, flushing each, and prints the
/// durable head after each flush. Does nothing unless run by the harness.
#[test]
fn writer() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let journal = SledJournal::open(Path::new(&path)).expect("the writer opens the journal");
    let mut out = std::io::stdout().lock();
    let mut next = journal.head() + 1;
    loop {
        let batch = 1 + (next % 8);
        let events = (next..next + batch).map(event).collect();
        journal.append(events).expect("append");
        journal.flush().expect("flush");
        next += batch;
        writeln!(out, "durable {}", next - 1).expect("stdout");
        out.flush().expect("stdout");
    }
}

/// A small xorshift: the seed is printed, so a failing round can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs the writer on `path` for `run_for`, SIGKILLs it, and returns the highest sequence
/// number it said was durable.
fn write_then_kill(path: &Path, run_for: Duration) -> u64 {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut durable = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("durable ") {
                durable = n.parse().expect("a sequence number");
            }
        }
        durable
    });
    // The clock starts once the writer has flushed something, so every round kills mid-write.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.join("db").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    reader.join().expect("the reader thread")
}

/// Every event is the one written at its sequence number, with no gaps from 1.
fn assert_exact_prefix(events: &[Event], context: &str) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{context}: a gap before seq {}", e.seq);
        assert_eq!(
            e.kind.command_verb(),
            Some(verb_at(e.seq).as_str()),
            "{context}: seq {} holds another event",
            e.seq
        );
    }
}

#[test]
fn a_killed_writer_loses_no_flushed_event_and_a_torn_tail_is_reported() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut random = Random(seed);
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let run_for = Duration::from_millis(20 + random.below(250));
        let context = format!("seed {seed}, round {round}, killed after {run_for:?}");

        let durable = write_then_kill(&path, run_for);
        assert!(durable > 0, "{context}: the writer flushed nothing");
        {
            let (journal, recovery) = open_checked(&path, 1).expect("reopen after SIGKILL");
            assert_eq!(recovery, None, "{context}: a SIGKILL is no damage");
            let events = journal.all().expect("read back");
            assert!(
                events.len() as u64 >= durable,
                "{context}: {} events kept, {durable} were durable",
                events.len()
            );
            assert_exact_prefix(&events, &context);
            assert_eq!(journal.head(), events.len() as u64, "{context}");
            journal.flush().expect("flush");
        }

        // Torn tail: the last 1 to 4096 bytes of the data file are gone.
        let data = path.join("db");
        let len = std::fs::metadata(&data).expect("db").len();
        let cut = 1 + random.below(4096).min(len.saturating_sub(1));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .and_then(|f| f.set_len(len - cut))
            .expect("truncate");
        let context = format!("{context}, {cut} of {len} bytes cut");
        let (journal, recovery) = open_checked(&path, 2).expect("reopen a torn journal");
        let events = journal.all().expect("read back");
        assert_exact_prefix(&events, &context);
        if (events.len() as u64) < durable {
            let recovery = recovery.as_ref().unwrap_or_else(|| {
                panic!(
                    "{context}: {} of {durable} durable events kept, and no loss reported",
                    events.len()
                )
            });
            assert!(
                recovery.expected_head >= durable,
                "{context}: the loss is reported up to {}, {durable} were durable",
                recovery.expected_head
            );
            assert!(
                recovery.salvaged_through <= recovery.expected_head,
                "{context}"
            );
        }
        let next = journal
            .append(vec![event(0)])
            .expect("append after recovery");
        let reported = recovery.map_or(0, |r| r.expected_head);
        assert!(
            next[0].seq > durable.max(reported),
            "{context}: seq {} given out again",
            next[0].seq
        );
    }
}
