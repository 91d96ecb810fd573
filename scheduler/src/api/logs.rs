//! `GET /v1/logs/{app}[/{service}]?tail=N&follow=true&since=MS&timestamps=true`:
//! instance output, gathered from the hosts that run the instances over
//! NATS and streamed as text lines, prefixed with the instance id when
//! there are several, and with the time each line was written (RFC 3339,
//! UTC) when asked.

use super::error::{ApiError, ApiResult};
use crate::cluster::Cluster;
use crate::snapshot::Snapshot;
use atoll_sdk::protocol::{LOG_LEASE_MS, LogChunk, LogRequest, VERSION};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// How long a host may take to send a tail.
const HOST_ANSWER: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
pub(crate) struct LogQuery {
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
    /// Unix milliseconds: only lines written since.
    since: Option<u64>,
    #[serde(default)]
    timestamps: bool,
}

pub(crate) async fn app_logs(
    State(c): State<Arc<Cluster>>,
    Path(app): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Response> {
    stream(c, app, None, q).await
}

pub(crate) async fn service_logs(
    State(c): State<Arc<Cluster>>,
    Path((app, service)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Response> {
    stream(c, app, Some(service), q).await
}

async fn stream(
    c: Arc<Cluster>,
    app: String,
    service: Option<String>,
    q: LogQuery,
) -> ApiResult<Response> {
    let targets = targets(&c.snapshot(), &app, service.as_deref())?;
    let client = c.buckets.js.client();
    let reply = client.new_inbox();
    let sub = (client.subscribe(reply.clone()).await)
        .map_err(|e| ApiError::internal("subscribing for logs", e))?;
    let requests: Vec<(String, Vec<u8>)> = (targets.iter())
        .filter_map(|(host, id)| {
            let req = LogRequest {
                v: VERSION,
                instance: id.clone(),
                tail: q.tail,
                follow: q.follow,
                reply: reply.clone(),
                since_ms: q.since,
                timestamps: q.timestamps,
            };
            let bytes = serde_json::to_vec(&req).ok()?;
            Some((c.buckets.names.log_requests(host), bytes))
        })
        .collect();
    let relay = Relay {
        client,
        reply,
        requests,
        open: targets.iter().map(|(_, id)| id.clone()).collect(),
        prefix: targets.len() > 1,
        follow: q.follow,
    };
    relay.ask().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(relay.run(sub, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal("logs", e))
}

/// The (host, instance id) of every instance of `app` (of `service` only,
/// when given).
fn targets(snap: &Snapshot, app: &str, service: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let Some(record) = snap.app(app) else {
        return Err(ApiError::no_app(app));
    };
    if let Some(s) = service
        && !record.spec.services.contains_key(s)
    {
        let known: Vec<&String> = record.spec.services.keys().collect();
        let m = format!("app {app} has no service {s} (services: {known:?})");
        return Err(ApiError::new(StatusCode::NOT_FOUND, m));
    }
    Ok((snap.assignments.iter())
        .flat_map(|(host, a)| {
            (a.instances.iter())
                .filter(|i| i.app == app && service.is_none_or(|s| s == i.service))
                .map(|i| (host.clone(), i.id.clone()))
        })
        .collect())
}

/// Relays the hosts' log chunks to the client until every instance's log
/// ended, the client went away, or (without `follow`) the hosts had their
/// time to answer.
struct Relay {
    client: async_nats::Client,
    /// Where the hosts answer: also the requests' reply subject, which is
    /// what lets a host with its own NATS user publish there (a response
    /// permission, renewed with each request).
    reply: String,
    /// (subject, request) to each instance's host; sent again to renew a
    /// `follow` before its lease runs out.
    requests: Vec<(String, Vec<u8>)>,
    /// Instances whose log has not ended.
    open: BTreeSet<String>,
    /// Several instances: each line says whose it is.
    prefix: bool,
    follow: bool,
}

impl Relay {
    async fn ask(&self) {
        for (subject, bytes) in &self.requests {
            let msg = bytes.clone().into();
            let (subject, reply) = (subject.clone(), self.reply.clone());
            let _ = self.client.publish_with_reply(subject, reply, msg).await;
        }
    }

    async fn run(mut self, mut sub: async_nats::Subscriber, tx: Sender<Bytes>) {
        let mut renew = tokio::time::interval(Duration::from_millis(LOG_LEASE_MS / 3));
        renew.tick().await;
        let first_deadline = tokio::time::sleep(HOST_ANSWER);
        tokio::pin!(first_deadline);
        let mut deadline_passed = false;
        let mut heard: BTreeSet<String> = BTreeSet::new();
        while !self.open.is_empty() {
            tokio::select! {
                msg = sub.next() => {
                    let Some(msg) = msg else { break };
                    let Ok(chunk) = serde_json::from_slice::<LogChunk>(&msg.payload) else { continue };
                    heard.insert(chunk.instance.clone());
                    let text = render(&chunk, self.prefix);
                    if chunk.eof {
                        self.open.remove(&chunk.instance);
                    }
                    if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
                        return;
                    }
                }
                // The client went away: stop, and the hosts stop when the
                // lease runs out.
                _ = tx.closed() => return,
                _ = renew.tick(), if self.follow => self.ask().await,
                _ = &mut first_deadline, if !deadline_passed => {
                    deadline_passed = true;
                    let text = self.give_up_on_silent(&heard);
                    if !text.is_empty() {
                        let _ = tx.send(Bytes::from(text)).await;
                    }
                }
            }
        }
    }

    /// Hosts that never answered are down or cut off: their instances are
    /// closed with a line that says so. Without `follow`, what has not
    /// ended by now is not waited for.
    fn give_up_on_silent(&mut self, heard: &BTreeSet<String>) -> String {
        let silent: Vec<String> = (self.open.iter())
            .filter(|id| !heard.contains(*id))
            .cloned()
            .collect();
        let mut text = String::new();
        for id in &silent {
            push_line(&mut text, self.prefix, id, "(its host did not answer)");
            self.open.remove(id);
        }
        if !self.follow {
            self.open.clear();
        }
        text
    }
}

/// A chunk's lines (and its error, if any) as text.
fn render(chunk: &LogChunk, prefix: bool) -> String {
    let mut text = String::new();
    for (i, line) in chunk.lines.iter().enumerate() {
        match chunk.times.get(i) {
            Some(ms) => {
                let at = atoll_sdk::timestamps::rfc3339_ms(*ms);
                push_line(&mut text, prefix, &chunk.instance, &format!("{at} {line}"));
            }
            None => push_line(&mut text, prefix, &chunk.instance, line),
        }
    }
    if let Some(e) = &chunk.error {
        push_line(
            &mut text,
            prefix,
            &chunk.instance,
            &format!("(log unavailable: {e})"),
        );
    }
    text
}

fn push_line(out: &mut String, prefix: bool, instance: &str, line: &str) {
    if prefix {
        out.push_str(instance);
        out.push_str(" | ");
    }
    out.push_str(line);
    out.push('\n');
}
