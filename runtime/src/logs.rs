//! Instance output for `atoll logs`: where each instance's log file is,
//! and answering [`LogRequest`]s from the server over NATS — the tail of
//! the file (from a time, with each line's time, see [`times`]), then new
//! lines while the request is renewed.

pub mod times;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoll_sdk::protocol::{LOG_LEASE_MS, LogChunk, LogRequest};
use futures::StreamExt;

/// Most of a log read for a tail: older lines are not sent.
const MAX_TAIL_BYTES: u64 = 1 << 20;
/// Lines per NATS message (well under the default 1 MiB payload).
const LINES_PER_CHUNK: usize = 200;
/// A longer line is cut.
const MAX_LINE: usize = 8 << 10;
/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Where instance logs live under the host's data dir.
#[derive(Clone, Debug)]
pub struct LogPaths {
    data_dir: PathBuf,
}

impl LogPaths {
    pub fn new(data_dir: &Path) -> LogPaths {
        LogPaths {
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// A component's stdout and stderr.
    pub fn component(&self, id: &str) -> PathBuf {
        self.data_dir.join("logs").join(format!("{id}.log"))
    }

    /// A container's (inside its bundle, removed with it).
    pub fn container(&self, id: &str) -> PathBuf {
        self.data_dir
            .join("containers")
            .join(id)
            .join(crate::container::LOG_FILE)
    }

    /// Opens a component's log for appending.
    pub fn open_component(&self, id: &str) -> Option<std::fs::File> {
        let path = self.component(id);
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot open the instance log"))
            .ok()
    }

    /// Every instance log on the host.
    pub fn all(&self) -> Vec<PathBuf> {
        let entries = |dir: PathBuf| {
            (std::fs::read_dir(dir).into_iter().flatten().flatten()).map(|e| e.path())
        };
        let components = entries(self.data_dir.join("logs"))
            .filter(|p| p.extension().is_some_and(|x| x == "log"));
        // (A bundle without a log yet is skipped by whoever reads them.)
        let containers = entries(self.data_dir.join("containers"))
            .map(|bundle| bundle.join(crate::container::LOG_FILE));
        components.chain(containers).collect()
    }

    /// Removes a component's log (and the times of its lines).
    pub fn remove_component(&self, id: &str) {
        let log = self.component(id);
        let _ = std::fs::remove_file(times::side_file(&log));
        let _ = std::fs::remove_file(log);
    }

    fn find(&self, id: &str) -> Option<PathBuf> {
        // Ids come from the network: only plain names may become paths.
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return None;
        }
        [self.container(id), self.component(id)]
            .into_iter()
            .find(|p| p.is_file())
    }
}

/// A line of a log, and the offset just after it.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    text: String,
    end: u64,
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// What a read of a log found.
struct LogRead {
    /// The complete lines from the offset read at.
    lines: Vec<Line>,
    /// Where the next read starts.
    next: u64,
    /// When the log was last written (Unix ms): the time of lines not yet
    /// recorded in its [`times`].
    written_ms: u64,
}

/// Reads the complete lines from `offset` to the end.
fn read_from(path: &Path, offset: u64) -> std::io::Result<LogRead> {
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let len = meta.len();
    // A log that shrank was replaced (the container was re-created).
    let offset = if len < offset { 0 } else { offset };
    let start = offset.max(len.saturating_sub(MAX_TAIL_BYTES));
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(len - start).read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut lines = Vec::new();
    let mut at = 0;
    for raw in buf[..complete].split_inclusive(|b| *b == b'\n') {
        at += raw.len();
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        lines.push(Line {
            text: cut(&String::from_utf8_lossy(raw)),
            end: start + at as u64,
        });
    }
    Ok(LogRead {
        lines,
        next: start + complete as u64,
        written_ms: times::modified_ms(&meta),
    })
}

/// Answers log requests until the subscription ends.
pub async fn serve(client: async_nats::Client, subject: String, paths: LogPaths) {
    let mut sub = loop {
        match client.subscribe(subject.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to log requests; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let leases: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    while let Some(msg) = sub.next().await {
        if !atoll_sdk::nats::published_to(&msg, &subject) {
            continue;
        }
        let Ok(req) = serde_json::from_slice::<LogRequest>(&msg.payload) else {
            continue;
        };
        let until = Instant::now() + Duration::from_millis(LOG_LEASE_MS);
        {
            let mut l = leases.lock().unwrap_or_else(|e| e.into_inner());
            // A renewal of a stream already running.
            if let Some(deadline) = l.get_mut(&req.reply) {
                *deadline = until;
                continue;
            }
            if req.follow {
                l.insert(req.reply.clone(), until);
            }
        }
        tokio::spawn(answer(client.clone(), req, paths.clone(), leases.clone()));
    }
}

async fn answer(
    client: async_nats::Client,
    req: LogRequest,
    paths: LogPaths,
    leases: Arc<Mutex<HashMap<String, Instant>>>,
) {
    let timed = req.timestamps;
    let send = |lines: Vec<(String, u64)>, eof: bool, error: Option<String>| {
        let (lines, times): (Vec<String>, Vec<u64>) = lines.into_iter().unzip();
        let chunk = LogChunk {
            instance: req.instance.clone(),
            lines,
            times: if timed { times } else { Vec::new() },
            eof,
            error,
        };
        let client = client.clone();
        let reply = req.reply.clone();
        async move {
            if let Ok(bytes) = serde_json::to_vec(&chunk) {
                let _ = client.publish(reply, bytes.into()).await;
            }
        }
    };
    let forget = || {
        leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&req.reply);
    };
    let Some(path) = paths.find(&req.instance) else {
        let why = format!("no log for instance {} on this host", req.instance);
        send(Vec::new(), true, Some(why)).await;
        forget();
        return;
    };
    let mut offset = match first_lines(&path, &req) {
        Ok((lines, offset)) => {
            for chunk in lines.chunks(LINES_PER_CHUNK) {
                send(chunk.to_vec(), false, None).await;
            }
            offset
        }
        Err(e) => {
            send(Vec::new(), true, Some(e.to_string())).await;
            forget();
            return;
        }
    };
    if !req.follow {
        send(Vec::new(), true, None).await;
        return;
    }
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        let expired = {
            let l = leases.lock().unwrap_or_else(|e| e.into_inner());
            l.get(&req.reply).is_none_or(|d| Instant::now() > *d)
        };
        if expired {
            break;
        }
        match read_from(&path, offset) {
            Ok(read) => {
                offset = read.next;
                // Written since the last read: at the log's last write at
                // the latest.
                let at = read.written_ms;
                let lines: Vec<(String, u64)> =
                    (read.lines.into_iter()).map(|l| (l.text, at)).collect();
                for chunk in lines.chunks(LINES_PER_CHUNK) {
                    send(chunk.to_vec(), false, None).await;
                }
            }
            // The instance was removed: its log with it.
            Err(_) => {
                send(Vec::new(), true, None).await;
                break;
            }
        }
    }
    forget();
}

/// What a request gets first: the lines written since its `since_ms`
/// (all without), the last `tail` of them, each with its time; and the
/// offset to follow from.
fn first_lines(path: &Path, req: &LogRequest) -> std::io::Result<(Vec<(String, u64)>, u64)> {
    let times = (req.timestamps || req.since_ms.is_some()).then(|| times::Times::load(path));
    // A record may fall inside a line: read from a line's length before
    // it, so the line that straddles it comes whole (what comes before
    // is older than `since` and left out below).
    let start = match (&times, req.since_ms) {
        (Some(t), Some(since)) => t.start_for(since).saturating_sub(MAX_LINE as u64 + 1),
        _ => 0,
    };
    let read = read_from(path, start)?;
    let mut lines: Vec<(String, u64)> = (read.lines.into_iter())
        .map(|l| {
            let at = times.as_ref().map_or(0, |t| t.at(l.end, read.written_ms));
            (l.text, at)
        })
        .collect();
    if let Some(since) = req.since_ms {
        lines.retain(|(_, at)| *at >= since);
    }
    let start = req.tail.map_or(0, |n| lines.len().saturating_sub(n));
    lines.drain(..start);
    Ok((lines, read.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tail: Option<usize>, since_ms: Option<u64>) -> LogRequest {
        LogRequest {
            v: 1,
            instance: "web-1".into(),
            tail,
            follow: false,
            reply: "r".into(),
            since_ms,
            timestamps: true,
        }
    }

    #[test]
    fn first_lines_take_the_tail_of_what_was_written_since_and_cut_long_ones() {
        let dir = std::env::temp_dir().join(format!("atoll-first-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.log");
        let long = "x".repeat(MAX_LINE + 10);
        std::fs::write(&path, format!("a\nb\nc\r\nd\n{long}\n")).unwrap();
        // a, b at 1000; c at 2000; d and the long one not recorded yet.
        let mut side = Vec::new();
        for (len, t) in [(4u64, 1000u64), (7, 2000)] {
            side.extend(len.to_le_bytes());
            side.extend(t.to_le_bytes());
        }
        std::fs::write(times::side_file(&path), side).unwrap();
        let texts = |r: &LogRequest| -> Vec<String> {
            let (lines, _) = first_lines(&path, r).unwrap();
            lines.into_iter().map(|(l, _)| l).collect()
        };
        let all = texts(&request(None, None));
        assert_eq!(all[..4], ["a", "b", "c", "d"]);
        assert!(all[4].chars().count() <= MAX_LINE + 1);
        assert_eq!(texts(&request(Some(2), None))[0], "d");
        assert_eq!(texts(&request(None, Some(1500)))[0], "c");
        assert_eq!(texts(&request(Some(1), Some(1500))).len(), 1);
        // A record inside a line: the line comes whole.
        let mut side = Vec::new();
        side.extend(6u64.to_le_bytes());
        side.extend(1500u64.to_le_bytes());
        let mid = dir.join("mid.log");
        std::fs::write(&mid, "a\nbcdef\n").unwrap();
        std::fs::write(times::side_file(&mid), side).unwrap();
        let (lines, _) = first_lines(&mid, &request(None, Some(1600))).unwrap();
        let texts: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(texts, ["bcdef"]);
        let (lines, offset) = first_lines(&path, &request(None, Some(1000))).unwrap();
        let times: Vec<u64> = lines.iter().map(|(_, t)| *t).collect();
        assert_eq!(times[..3], [1000, 1000, 2000]);
        let written = times::modified_ms(&std::fs::metadata(&path).unwrap());
        assert_eq!(times[3], written, "unrecorded: the log's last write");
        assert_eq!(offset, std::fs::metadata(&path).unwrap().len());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_consume_only_complete_lines_and_restart_after_truncation() {
        let dir = std::env::temp_dir().join(format!("atoll-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.log");
        std::fs::write(&path, "one\ntwo\npart").unwrap();
        let read = read_from(&path, 0).unwrap();
        let text: Vec<&str> = read.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, ["one", "two"]);
        assert_eq!(read.lines[1].end, 8);
        assert_eq!(read.next, 8);
        std::fs::write(&path, "new\n").unwrap();
        let read = read_from(&path, read.next).unwrap();
        assert_eq!(read.lines[0].text, "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_plain_instance_ids_become_paths() {
        let p = LogPaths::new(Path::new("/nonexistent"));
        assert!(p.find("../../etc/passwd").is_none());
        assert!(p.find("").is_none());
    }
}
