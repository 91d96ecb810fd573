//! Constant load for the zero-downtime tests: client threads that send
//! GETs round-robin over some addresses until stopped, counting every
//! answer and every failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub ok: u64,
    /// Non-200 answers and connection errors, with the first few kept.
    pub failed: u64,
    pub failures: Vec<String>,
    /// `classify(body)` → how many answers.
    pub kinds: BTreeMap<String, u64>,
    /// The kind of the last answers each client got, in order of stopping.
    pub last: Vec<String>,
    /// Requests each client has finished (answered or failed), by client.
    pub done: Vec<u64>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` threads, each sending `GET path` over `addrs` in turn
    /// (a new connection per request); `classify` names an answer's kind
    /// (the version that served it, say).
    pub fn start(
        addrs: &[String],
        path: &str,
        clients: usize,
        classify: fn(&str) -> String,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen {
            done: vec![0; clients],
            ..Seen::default()
        }));
        let threads = (0..clients)
            .map(|n| {
                let (stop, seen) = (stop.clone(), seen.clone());
                let addrs = addrs.to_vec();
                let path = path.to_string();
                std::thread::spawn(move || {
                    let mut last = String::new();
                    let mut i = n;
                    while !stop.load(Ordering::Relaxed) {
                        let addr = &addrs[i % addrs.len()];
                        i += 1;
                        let answer = super::http_get(addr, &path);
                        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                        s.done[n] += 1;
                        match answer {
                            Ok((200, body)) => {
                                s.ok += 1;
                                last = classify(&body);
                                *s.kinds.entry(last.clone()).or_default() += 1;
                            }
                            other => {
                                s.failed += 1;
                                if s.failures.len() < 10 {
                                    s.failures.push(format!("{addr}{path}: {other:?}"));
                                }
                            }
                        }
                    }
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .last
                        .push(last);
                })
            })
            .collect();
        Load {
            stop,
            seen,
            threads,
        }
    }

    /// Answers so far.
    pub fn ok(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).ok
    }

    /// Waits (up to 10 s) until `n` more answers than now came: the load
    /// runs (before a change), or runs on (after it).
    pub fn more(&self, n: u64, what: &str) {
        let base = self.ok();
        let limit = std::time::Duration::from_secs(10);
        super::wait_until(what, limit, || (self.ok() > base + n).then_some(()));
    }

    /// Answers of kind `kind` so far.
    pub fn count(&self, kind: &str) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.kinds.get(kind).copied().unwrap_or(0)
    }

    /// Waits (bounded by `limit`) until every client has sent and finished
    /// a request after this call: then no request sent before it is still
    /// in flight. A client stuck longer than `limit` fails the test.
    pub fn settle(&self, limit: std::time::Duration) {
        let done = |s: &Seen| s.done.clone();
        let before = done(&self.seen.lock().unwrap_or_else(|e| e.into_inner()));
        super::wait_until(
            "every client to finish a request sent after now",
            limit,
            || {
                let now = done(&self.seen.lock().unwrap_or_else(|e| e.into_inner()));
                // +2: the one in flight now may finish first.
                (now.iter().zip(&before).all(|(n, b)| *n >= b + 2)).then_some(())
            },
        );
    }

    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.clone()
    }
}
