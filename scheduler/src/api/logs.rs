//! `GET /v1/logs/{app}[/{service}]?tail=N&follow=true`: instance output,
//! gathered from the hosts that run the instances over NATS and streamed
//! as text lines, prefixed with the instance id when there are several.

use super::error::{ApiError, ApiResult};
use crate::cluster::Cluster;
use atoll_sdk::protocol::{LOG_LEASE_MS, LogChunk, LogRequest, VERSION};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a host may take to send a tail.
const HOST_ANSWER: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
pub(crate) struct LogQuery {
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
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
    let snap = c.snapshot();
    let Some(record) = snap.apps.iter().find(|a| a.spec.name == app) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no app named {app}"),
        ));
    };
    if let Some(s) = &service
        && !record.spec.services.contains_key(s)
    {
        let known: Vec<&String> = record.spec.services.keys().collect();
        let m = format!("app {app} has no service {s} (services: {known:?})");
        return Err(ApiError::new(StatusCode::NOT_FOUND, m));
    }
    let targets: Vec<(String, String)> = snap
        .assignments
        .iter()
        .flat_map(|(host, a)| {
            a.instances
                .iter()
                .filter(|i| i.app == app && service.as_ref().is_none_or(|s| *s == i.service))
                .map(|i| (host.clone(), i.id.clone()))
        })
        .collect();
    let client = c.buckets.js.client();
    let reply = client.new_inbox();
    let mut sub = client
        .subscribe(reply.clone())
        .await
        .map_err(|e| ApiError::internal("subscribing for logs", e))?;
    let requests: Vec<(String, Vec<u8>)> = targets
        .iter()
        .filter_map(|(host, id)| {
            let req = LogRequest {
                v: VERSION,
                instance: id.clone(),
                tail: q.tail,
                follow: q.follow,
                reply: reply.clone(),
            };
            let bytes = serde_json::to_vec(&req).ok()?;
            Some((c.buckets.names.log_requests(host), bytes))
        })
        .collect();
    for (subject, bytes) in &requests {
        let _ = client.publish(subject.clone(), bytes.clone().into()).await;
    }
    let prefix = targets.len() > 1;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let follow = q.follow;
    tokio::spawn(async move {
        let mut open: BTreeSet<String> = targets.iter().map(|(_, id)| id.clone()).collect();
        let mut renew = tokio::time::interval(Duration::from_millis(LOG_LEASE_MS / 3));
        renew.tick().await;
        let first_deadline = tokio::time::sleep(HOST_ANSWER);
        tokio::pin!(first_deadline);
        let mut deadline_passed = false;
        let mut heard: BTreeSet<String> = BTreeSet::new();
        while !open.is_empty() {
            tokio::select! {
                msg = sub.next() => {
                    let Some(msg) = msg else { break };
                    let Ok(chunk) = serde_json::from_slice::<LogChunk>(&msg.payload) else { continue };
                    heard.insert(chunk.instance.clone());
                    let text = render(&chunk, prefix);
                    if chunk.eof {
                        open.remove(&chunk.instance);
                    }
                    if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
                        return;
                    }
                }
                // The client went away: stop, and the hosts stop when the
                // lease runs out.
                _ = tx.closed() => return,
                _ = renew.tick(), if follow => {
                    for (subject, bytes) in &requests {
                        let _ = client.publish(subject.clone(), bytes.clone().into()).await;
                    }
                }
                _ = &mut first_deadline, if !deadline_passed => {
                    deadline_passed = true;
                    // Hosts that never answered are down or cut off; without
                    // `follow`, what has not ended by now is not waited for.
                    let silent: Vec<String> = open.iter().filter(|id| !heard.contains(*id)).cloned().collect();
                    let mut text = String::new();
                    for id in &silent {
                        push_line(&mut text, prefix, id, "(its host did not answer)");
                        open.remove(id);
                    }
                    if !follow {
                        open.clear();
                    }
                    if !text.is_empty() {
                        let _ = tx.send(Bytes::from(text)).await;
                    }
                }
            }
        }
    });
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

/// A chunk's lines (and its error, if any) as text.
fn render(chunk: &LogChunk, prefix: bool) -> String {
    let mut text = String::new();
    for line in &chunk.lines {
        push_line(&mut text, prefix, &chunk.instance, line);
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
