//! `atoll exec` on the host: runs a command in one of its running
//! container instances through the OCI runtime and answers with the
//! status and output (each stream cut at [`EXEC_OUTPUT_MAX`]). Requests
//! come from a server only (the subject is the host's own, which only
//! servers may publish to); a few run at once, each bounded by its
//! timeout. An interactive one (`-i`/`-t`) is a session instead (see
//! [`super::exec_session`]).

use std::sync::Arc;
use std::time::Duration;

use atoll_sdk::cluster::InstanceState;
use atoll_sdk::protocol::{EXEC_OUTPUT_MAX, EXEC_TIMEOUT_MAX_MS, ExecReply, ExecRequest};
use futures::StreamExt;

use crate::container::Containers;
use crate::supervisor::Supervisor;

/// Commands run at once, at most; more wait their turn.
const AT_ONCE: usize = 4;
/// Interactive sessions at once, at most; more are refused.
const SESSIONS: usize = 16;

/// Answers the exec requests of `sub` (subscribed to `subject`) until the
/// connection ends.
pub(super) async fn serve(
    client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    subject: &str,
    supervisor: Arc<Supervisor>,
    containers: Option<Arc<Containers>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let sessions = Arc::new(tokio::sync::Semaphore::new(SESSIONS));
    while let Some(msg) = sub.next().await {
        if !atoll_sdk::nats::published_to(&msg, subject) {
            continue;
        }
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let mut req = match serde_json::from_slice::<ExecRequest>(&msg.payload) {
            Ok(req) => req,
            Err(e) => {
                let answer = refused(format!("unreadable exec request: {e}"));
                send(&client, reply, &answer).await;
                continue;
            }
        };
        if let Some(session) = req.session.take() {
            let (client, supervisor, containers) =
                (client.clone(), supervisor.clone(), containers.clone());
            let Ok(slot) = sessions.clone().try_acquire_owned() else {
                let busy = format!("{SESSIONS} interactive sessions run on this host already");
                super::exec_session::refuse(&client, reply, busy).await;
                continue;
            };
            tokio::spawn(async move {
                let containers = runnable(&req, &supervisor, containers.as_ref());
                super::exec_session::run(client, reply, req, session, containers).await;
                drop(slot);
            });
            continue;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (client, supervisor, containers) =
            (client.clone(), supervisor.clone(), containers.clone());
        tokio::spawn(async move {
            let out = run(&req, &supervisor, containers.as_ref()).await;
            send(&client, reply, &out).await;
            drop(slot);
        });
    }
}

async fn send(client: &async_nats::Client, reply: async_nats::Subject, answer: &ExecReply) {
    if let Ok(bytes) = serde_json::to_vec(answer) {
        let _ = client.publish(reply, bytes.into()).await;
    }
}

fn refused(error: String) -> ExecReply {
    ExecReply {
        error: Some(error),
        ..ExecReply::default()
    }
}

/// The containers of the host, if `req` names a running container
/// instance of it with a command to run; else why not.
fn runnable(
    req: &ExecRequest,
    supervisor: &Supervisor,
    containers: Option<&Arc<Containers>>,
) -> Result<Arc<Containers>, String> {
    let status = supervisor
        .statuses()
        .into_iter()
        .find(|s| s.id == req.instance);
    let Some(status) = status else {
        return Err(format!("no instance {} on this host", req.instance));
    };
    if status.state != InstanceState::Running {
        return Err(format!(
            "instance {} is {:?}, not running",
            req.instance, status.state
        ));
    }
    let Some(containers) = containers.filter(|c| c.bundle(&req.instance).is_dir()) else {
        return Err(format!(
            "instance {} is a Wasm component: exec runs commands in containers",
            req.instance
        ));
    };
    if req.argv.is_empty() {
        return Err("no command given".into());
    }
    Ok(containers.clone())
}

async fn run(
    req: &ExecRequest,
    supervisor: &Supervisor,
    containers: Option<&Arc<Containers>>,
) -> ExecReply {
    let containers = match runnable(req, supervisor, containers) {
        Ok(c) => c,
        Err(why) => return refused(why),
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1, EXEC_TIMEOUT_MAX_MS));
    match containers
        .exec_command(&req.instance, &req.argv, timeout)
        .await
    {
        Ok(out) => {
            let (stdout, cut_out) = bounded(&out.stdout);
            let (stderr, cut_err) = bounded(&out.stderr);
            ExecReply {
                exit_code: out.status.code(),
                stdout,
                stderr,
                truncated: cut_out || cut_err,
                error: None,
            }
        }
        Err(e) => refused(e),
    }
}

/// The first [`EXEC_OUTPUT_MAX`] bytes as text, and whether more was cut.
fn bounded(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > EXEC_OUTPUT_MAX;
    let kept = &bytes[..bytes.len().min(EXEC_OUTPUT_MAX)];
    (String::from_utf8_lossy(kept).into_owned(), cut)
}
