//! When each line of an instance's log was written, for `atoll logs
//! --since` and `--timestamps`. Instances write their logs themselves (a
//! container's output goes straight to its file, so that it outlives the
//! host agent; a component's through wasmtime), so the host keeps a side
//! file beside each log (`<log>.times`) of records (length, time): every
//! [`POLL`] it looks at each log and, where one grew, appends the new
//! length and the file's modification time. A line is as old as the
//! first record that covers its end: at most a poll later than it was
//! written. A log that shrank was re-created, and its records start over.
//! After a restart of the host agent, what was written while it was down
//! gets the log's modification time then.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::LogPaths;

/// How often the logs are looked at.
pub const POLL: Duration = Duration::from_millis(100);
/// A record: the log's length, then the time, both u64 little-endian.
const RECORD: usize = 16;

/// The side file of a log.
pub fn side_file(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".times");
    PathBuf::from(name)
}

/// A log's records, oldest first: `(length, time_ms)`, lengths rising.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Times {
    records: Vec<(u64, u64)>,
}

impl Times {
    pub fn new(records: Vec<(u64, u64)>) -> Times {
        Times { records }
    }

    /// The records of `log` (none when it has no side file yet).
    pub fn load(log: &Path) -> Times {
        let bytes = std::fs::read(side_file(log)).unwrap_or_default();
        Times::new(bytes.chunks_exact(RECORD).map(decode).collect())
    }

    /// When the line ending at byte `end` was written: the first record
    /// that covers it, or `unrecorded` (the log's last write) when none
    /// does yet.
    pub fn at(&self, end: u64, unrecorded: u64) -> u64 {
        let i = self.records.partition_point(|(len, _)| *len < end);
        self.records.get(i).map_or(unrecorded, |(_, t)| *t)
    }

    /// Where to start reading for the lines written at or after
    /// `since_ms`: the end of the last stretch recorded before then.
    pub fn start_for(&self, since_ms: u64) -> u64 {
        let i = self.records.partition_point(|(_, t)| *t < since_ms);
        i.checked_sub(1).map_or(0, |prev| self.records[prev].0)
    }
}

fn decode(record: &[u8]) -> (u64, u64) {
    let mut len = [0u8; 8];
    let mut time = [0u8; 8];
    len.copy_from_slice(&record[..8]);
    time.copy_from_slice(&record[8..RECORD]);
    (u64::from_le_bytes(len), u64::from_le_bytes(time))
}

/// The length a log had when its side file's last record was written.
fn last_length(log: &Path) -> u64 {
    let read = || -> std::io::Result<u64> {
        let mut f = std::fs::File::open(side_file(log))?;
        let len = f.metadata()?.len();
        let whole = len - len % RECORD as u64;
        if whole == 0 {
            return Ok(0);
        }
        f.seek(SeekFrom::Start(whole - RECORD as u64))?;
        let mut record = [0u8; RECORD];
        f.read_exact(&mut record)?;
        Ok(decode(&record).0)
    };
    read().unwrap_or(0)
}

/// Records that `log` grew to `len` at `time_ms`; starts its records
/// over when `restart` (the log was re-created).
fn append(log: &Path, len: u64, time_ms: u64, restart: bool) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(!restart)
        .write(true)
        .truncate(restart)
        .open(side_file(log))?;
    let mut record = [0u8; RECORD];
    record[..8].copy_from_slice(&len.to_le_bytes());
    record[8..].copy_from_slice(&time_ms.to_le_bytes());
    f.write_all(&record)
}

/// When the file was last written (Unix ms), or now if the file system
/// cannot say.
pub fn modified_ms(meta: &std::fs::Metadata) -> u64 {
    (meta.modified().ok())
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or_else(atoll_sdk::protocol::now_ms, |d| d.as_millis() as u64)
}

/// One look at every log: appends a record for each that grew. `known`
/// holds each log's length at its last record, carried between looks.
pub fn look(paths: &LogPaths, known: &mut HashMap<PathBuf, u64>) {
    let logs: std::collections::HashSet<PathBuf> = paths.all().into_iter().collect();
    known.retain(|p, _| logs.contains(p));
    for log in logs {
        let Ok(meta) = std::fs::metadata(&log) else {
            continue;
        };
        let len = meta.len();
        let last = *known
            .entry(log.clone())
            .or_insert_with(|| last_length(&log));
        if len == last {
            continue;
        }
        let time_ms = modified_ms(&meta);
        match append(&log, len, time_ms, len < last) {
            Ok(()) => {
                known.insert(log, len);
            }
            Err(e) => {
                tracing::debug!(log = %log.display(), error = %e, "cannot record log times")
            }
        }
    }
}

/// Keeps every log's times, for as long as the host runs (whether or not
/// it is connected).
pub async fn keep(paths: LogPaths) {
    let mut known = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        let p = paths.clone();
        let looked = tokio::task::spawn_blocking(move || {
            look(&p, &mut known);
            known
        });
        match looked.await {
            Ok(k) => known = k,
            Err(_) => known = HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_as_old_as_the_first_record_covering_its_end() {
        let t = Times::new(vec![(10, 1000), (25, 2000), (40, 3000)]);
        assert_eq!(t.at(4, 9), 1000);
        assert_eq!(t.at(10, 9), 1000);
        assert_eq!(t.at(11, 9), 2000);
        assert_eq!(t.at(40, 9), 3000);
        assert_eq!(t.at(41, 9), 9, "written since the last look");
        assert_eq!(Times::default().at(5, 7), 7);
    }

    #[test]
    fn reading_since_a_time_starts_after_the_stretches_written_before() {
        let t = Times::new(vec![(10, 1000), (25, 2000), (40, 3000)]);
        assert_eq!(t.start_for(0), 0);
        assert_eq!(t.start_for(1000), 0);
        assert_eq!(t.start_for(1500), 10);
        assert_eq!(t.start_for(2000), 10);
        assert_eq!(t.start_for(2001), 25);
        assert_eq!(t.start_for(9000), 40, "only what is not recorded yet");
    }

    #[test]
    fn looks_record_growth_resume_after_a_restart_and_start_over_on_a_new_log() {
        let dir = std::env::temp_dir().join(format!("atoll-times-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = LogPaths::new(&dir);
        let log = paths.component("web-1");
        std::fs::create_dir_all(log.parent().expect("dir")).expect("dir");
        std::fs::write(&log, "one\n").expect("write");
        let mut known = HashMap::new();
        look(&paths, &mut known);
        look(&paths, &mut known);
        assert_eq!(Times::load(&log).records.len(), 1, "no growth, no record");
        std::fs::write(&log, "one\ntwo\n").expect("write");
        // A new agent: it finds where the last one stopped.
        let mut known = HashMap::new();
        look(&paths, &mut known);
        let lens: Vec<u64> = Times::load(&log).records.iter().map(|r| r.0).collect();
        assert_eq!(lens, [4, 8]);
        std::fs::write(&log, "x\n").expect("write");
        look(&paths, &mut known);
        let lens: Vec<u64> = Times::load(&log).records.iter().map(|r| r.0).collect();
        assert_eq!(lens, [2], "a re-created log starts over");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
