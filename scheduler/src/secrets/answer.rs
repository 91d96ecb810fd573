//! Hosts ask for the values their instances mount on their own subject
//! (which only they may publish to); a server answers with the values the
//! host's assignment holds mounts of, and refuses anything else. Servers
//! share the work as a queue group.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_nats::jetstream::kv;
use atoll_sdk::cluster::Assignment;
use atoll_sdk::protocol::{FileRef, FileValue, FileValues, FileValuesRequest, Names};

use super::vault::Vault;

/// The most value bytes in one answer (in base64 they fit NATS's 1 MiB
/// message with room to spare); one value is always sent, and a value is
/// at most `spec::MAX_FILE_VALUE`.
const ANSWER_BYTES: usize = 512 * 1024;

pub struct Answering {
    pub client: async_nats::Client,
    pub names: Names,
    pub vault: Arc<Vault>,
    pub assignments: kv::Store,
}

/// Answers until the subscription ends.
pub async fn serve(a: Answering) {
    let subject = a.names.file_values_all();
    let client = a.client.clone();
    let a = Arc::new(a);
    crate::host_requests::serve(client, subject, move |msg| {
        let a = a.clone();
        async move {
            let answer = match a.names.sender(&msg.subject) {
                Some(host) if msg.subject.as_str() == a.names.file_values(host) => {
                    a.answer(host, &msg.payload).await
                }
                _ => refusal("not a secrets subject".into()),
            };
            serde_json::to_vec(&answer).unwrap_or_default()
        }
    })
    .await;
}

fn refusal(error: String) -> FileValues {
    FileValues {
        values: Vec::new(),
        error: Some(error),
    }
}

impl Answering {
    async fn answer(&self, host: &str, payload: &[u8]) -> FileValues {
        let req: FileValuesRequest = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(e) => return refusal(format!("malformed request: {e}")),
        };
        let assignment = match crate::host_requests::assignment_of(&self.assignments, host).await {
            Ok(Some(a)) => a,
            Ok(None) => return refusal(format!("nothing is assigned to {host}")),
            Err(e) => return refusal(e),
        };
        let allowed = mounted(&assignment, &req.app);
        let mut values = Vec::new();
        let mut bytes = 0;
        for want in req.wanted {
            if !allowed.contains(&want) {
                tracing::warn!(%host, app = %req.app, name = %want.name, "secret refused: not mounted by an instance assigned to the host");
                return refusal(format!(
                    "{} {} of {} is not mounted by an instance assigned to {host}",
                    want.kind.noun(),
                    want.name,
                    req.app
                ));
            }
            match self.vault.value(&req.app, &want).await {
                // The rest is asked for again: one answer stays within a
                // NATS message.
                Ok(Some(value)) if !values.is_empty() && bytes + value.len() > ANSWER_BYTES => {
                    break;
                }
                Ok(Some(value)) => {
                    bytes += value.len();
                    values.push(FileValue { of: want, value });
                }
                Ok(None) => {
                    return refusal(format!(
                        "{} {} of {} is not stored (deploy the app again)",
                        want.kind.noun(),
                        want.name,
                        req.app
                    ));
                }
                Err(e) => return refusal(e.to_string()),
            }
        }
        FileValues {
            values,
            error: None,
        }
    }
}

/// What the instances of `app` in `a` mount.
pub fn mounted(a: &Assignment, app: &str) -> BTreeSet<FileRef> {
    (a.instances.iter())
        .filter(|i| i.app == app)
        .flat_map(|i| &i.files)
        .map(|f| FileRef {
            kind: f.kind,
            name: f.name.clone(),
            digest: f.digest.clone(),
        })
        .collect()
}
