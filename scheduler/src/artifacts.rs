//! Components uploaded with a deploy: checked ([`verify`]) and kept in the
//! cluster's object store by digest, so hosts anywhere can fetch them; a
//! deploy's local component paths become those digests
//! ([`resolve_components`]) before the app is stored.

use crate::cluster::Cluster;
use async_nats::jetstream::object_store;
use atoll_sdk::digest::{self, WasmKind};
use atoll_sdk::protocol::artifact_object_name;
use atoll_sdk::spec::{App, Artifact};
use std::collections::BTreeMap;

/// Why an upload, or a deploy's component, was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArtifactError {
    #[error("{claimed} is not a digest (expected sha256:<64 hex digits>)")]
    NotADigest { claimed: String },
    #[error("upload does not match its digest: claimed {claimed}, got {actual}")]
    Mismatch { claimed: String, actual: String },
    #[error(
        "this .wasm is a core module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("this file is not WebAssembly")]
    NotWasm,
    /// `at`: where the component is named in the Compose file.
    #[error("{at}: {path} was not uploaded with the deploy (use `atoll deploy -f FILE`)")]
    NotUploaded { at: String, path: String },
    #[error("{at}: artifact {digest} for {path} is not in the artifact store; upload it first")]
    NotStored {
        at: String,
        path: String,
        digest: String,
    },
    #[error("storing the artifact: {source}")]
    Store { source: object_store::PutError },
}

impl ArtifactError {
    /// Whether the store failed (rather than the upload being refused).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, ArtifactError::Store { .. })
    }
}

/// Whether an upload may be stored: it has the digest it claims and is a
/// WebAssembly component.
pub(crate) fn verify(claimed: &str, body: &[u8]) -> Result<(), ArtifactError> {
    if !digest::is_valid(claimed) {
        return Err(ArtifactError::NotADigest {
            claimed: claimed.to_string(),
        });
    }
    let actual = digest::sha256(body);
    if actual != claimed {
        return Err(ArtifactError::Mismatch {
            claimed: claimed.to_string(),
            actual,
        });
    }
    match digest::wasm_kind(body) {
        WasmKind::Component => Ok(()),
        WasmKind::CoreModule => Err(ArtifactError::CoreModule),
        WasmKind::NotWasm => Err(ArtifactError::NotWasm),
    }
}

/// What [`store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The store had it already.
    Existing,
    New,
}

/// Verifies an upload and stores it under its digest, once.
pub(crate) async fn store(
    cluster: &Cluster,
    claimed: &str,
    body: &[u8],
) -> Result<Stored, ArtifactError> {
    verify(claimed, body)?;
    if exists(cluster, claimed).await {
        return Ok(Stored::Existing);
    }
    let name = artifact_object_name(claimed);
    let mut reader = std::io::Cursor::new(body);
    (cluster
        .buckets
        .artifacts
        .put(name.as_str(), &mut reader)
        .await)
        .map_err(|source| ArtifactError::Store { source })?;
    Ok(Stored::New)
}

/// Whether the object store has the artifact with this digest.
pub(crate) async fn exists(cluster: &Cluster, digest: &str) -> bool {
    let name = artifact_object_name(digest);
    cluster.buckets.artifacts.info(&name).await.is_ok()
}

/// Replaces each local component path of `app` (its services' and their
/// canaries') with the digest the CLI uploaded it under: `uploaded` maps
/// the path as written in the file to that digest.
pub(crate) async fn resolve_components(
    cluster: &Cluster,
    app: &mut App,
    uploaded: &BTreeMap<String, String>,
) -> Result<(), ArtifactError> {
    for svc in app.services.values_mut() {
        let name = svc.name.clone();
        let main = (
            &mut svc.artifact,
            format!("services.{name}.x-atoll.component"),
        );
        let canary = (svc.canary.as_mut()).map(|k| {
            let at = format!("services.{name}.x-atoll.canary.component");
            (&mut k.artifact, at)
        });
        for (artifact, at) in std::iter::once(main).chain(canary) {
            resolve(cluster, artifact, at, uploaded).await?;
        }
    }
    Ok(())
}

/// A local component (uploaded with the deploy) → its stored digest.
async fn resolve(
    cluster: &Cluster,
    artifact: &mut Artifact,
    at: String,
    uploaded: &BTreeMap<String, String>,
) -> Result<(), ArtifactError> {
    let Artifact::Component(path) = &*artifact else {
        return Ok(());
    };
    let Some(digest) = uploaded.get(path) else {
        let path = path.clone();
        return Err(ArtifactError::NotUploaded { at, path });
    };
    if !exists(cluster, digest).await {
        let (path, digest) = (path.clone(), digest.clone());
        return Err(ArtifactError::NotStored { at, path, digest });
    }
    *artifact = Artifact::Stored(digest.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component header: magic, then version 0x0d layer 1.
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    const CORE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn an_upload_must_have_the_digest_it_claims() {
        let good = digest::sha256(COMPONENT);
        assert!(verify(&good, COMPONENT).is_ok());
        let e = verify("sha256:nope", COMPONENT).expect_err("not a digest");
        assert_eq!(
            e.to_string(),
            "sha256:nope is not a digest (expected sha256:<64 hex digits>)"
        );
        let other = digest::sha256(b"other");
        let e = verify(&other, COMPONENT).expect_err("mismatch");
        assert!(matches!(e, ArtifactError::Mismatch { .. }), "{e}");
        assert!(!e.is_unavailable());
    }

    #[test]
    fn only_components_are_stored() {
        let core = verify(&digest::sha256(CORE), CORE).expect_err("core module");
        assert!(matches!(core, ArtifactError::CoreModule), "{core}");
        assert!(core.to_string().contains("wasm32-wasip2"));
        let text = b"hello";
        let e = verify(&digest::sha256(text), text).expect_err("not wasm");
        assert_eq!(e.to_string(), "this file is not WebAssembly");
    }
}
