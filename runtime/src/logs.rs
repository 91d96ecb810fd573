//! Instance output for `atoll logs`: where each instance's log file is,
//! and answering [`LogRequest`]s from the server over NATS — the tail of
//! the file, then new lines while the request is renewed.

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

/// The last `n` lines of the text (all when `None`), and the offset after
/// the last complete line.
pub fn tail_lines(text: &str, n: Option<usize>) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = n.map_or(0, |n| lines.len().saturating_sub(n));
    lines[start..].iter().map(|l| cut(l)).collect()
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

/// Reads from `offset` to the end; returns the text and the new offset
/// (only complete lines are consumed).
fn read_from(path: &Path, offset: u64) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    // A log that shrank was replaced (the container was re-created).
    let offset = if len < offset { 0 } else { offset };
    let start = offset.max(len.saturating_sub(MAX_TAIL_BYTES));
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(len - start).read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]).into_owned();
    Ok((text, start + complete as u64))
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
    let send = |lines: Vec<String>, eof: bool, error: Option<String>| {
        let chunk = LogChunk {
            instance: req.instance.clone(),
            lines,
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
    let Some(path) = paths.find(&req.instance) else {
        let why = format!("no log for instance {} on this host", req.instance);
        send(Vec::new(), true, Some(why)).await;
        leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&req.reply);
        return;
    };
    let mut offset = match read_from(&path, 0) {
        Ok((text, offset)) => {
            let lines = tail_lines(&text, req.tail);
            for chunk in lines.chunks(LINES_PER_CHUNK) {
                send(chunk.to_vec(), false, None).await;
            }
            offset
        }
        Err(e) => {
            send(Vec::new(), true, Some(e.to_string())).await;
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
            Ok((text, next)) => {
                offset = next;
                let lines = tail_lines(&text, None);
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
    leases
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&req.reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_take_the_last_lines_and_cut_long_ones() {
        let text = "a\nb\nc\n";
        assert_eq!(tail_lines(text, Some(2)), ["b", "c"]);
        assert_eq!(tail_lines(text, None), ["a", "b", "c"]);
        assert_eq!(tail_lines(text, Some(10)).len(), 3);
        let long = "x".repeat(MAX_LINE + 10);
        assert!(tail_lines(&long, None)[0].chars().count() <= MAX_LINE + 1);
    }

    #[test]
    fn reads_consume_only_complete_lines_and_restart_after_truncation() {
        let dir = std::env::temp_dir().join(format!("atoll-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.log");
        std::fs::write(&path, "one\ntwo\npart").unwrap();
        let (text, off) = read_from(&path, 0).unwrap();
        assert_eq!(text, "one\ntwo\n");
        assert_eq!(off, 8);
        std::fs::write(&path, "new\n").unwrap();
        let (text, _) = read_from(&path, off).unwrap();
        assert_eq!(text, "new\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_plain_instance_ids_become_paths() {
        let p = LogPaths::new(Path::new("/nonexistent"));
        assert!(p.find("../../etc/passwd").is_none());
        assert!(p.find("").is_none());
    }
}
