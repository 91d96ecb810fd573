//! `GET /v1/top` (the load of every service and host) and `GET /metrics`
//! (the server's Prometheus exposition): the [`crate::load_report`] of the
//! current snapshot and load board, over HTTP.

use crate::cluster::Cluster;
use crate::load_report::{self, ServerCounters};
use atoll_sdk::api::TopView;
use atoll_sdk::protocol::now_ms;
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) async fn top(State(c): State<Arc<Cluster>>) -> Json<TopView> {
    let snap = c.snapshot();
    let now = now_ms();
    let (loads, hosts) = {
        let board = c.load();
        (board.services(now), board.hosts(now))
    };
    Json(load_report::view(&snap, &loads, &hosts))
}

pub(crate) async fn metrics(State(c): State<Arc<Cluster>>) -> impl IntoResponse {
    let snap = c.snapshot();
    let loads = c.load().services(now_ms());
    let client = c.buckets.js.client();
    let connects = client.statistics().connects.load(Ordering::Relaxed);
    let counters = ServerCounters {
        placements: c.telemetry.placements(),
        reconciles: c.telemetry.reconcile_histogram(),
        nats_reconnects: connects.saturating_sub(1),
        leading: c.is_leading(),
        state_lost: c.telemetry.state_lost(),
    };
    let text = load_report::exposition(&snap, &loads, &counters);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            atoll_sdk::prometheus::CONTENT_TYPE,
        )],
        text,
    )
}
