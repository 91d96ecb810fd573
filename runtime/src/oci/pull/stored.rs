//! Images answered from the host's store without a registry: those
//! `atoll image load` recorded (asked first, they take precedence), tags
//! resolved before (Kubernetes' `IfNotPresent`), and — only when the
//! registry cannot be reached — whatever the last pull of the reference
//! brought, so that a host restarted offline runs its containers again.

use oci_client::Reference;
use oci_client::manifest::OciImageManifest;

use super::error::{Context, PullError};
use super::{MAX_CONFIG_BYTES, PullProgress, PulledImage, Puller};
use crate::oci::kind::classify;
use crate::oci::layout::{RefEntry, RefIndex};

impl Puller {
    /// Records what a pull resolved the reference to: every pull in the
    /// fallback index; a tag other than `latest` also in the index asked
    /// before any registry, so the next instance on this host starts
    /// without asking (`latest`, expected to move, is resolved on every
    /// pull, and a digest needs no resolving).
    pub(super) fn remember(&self, parsed: &Reference, manifest_digest: &str) {
        let entry = RefEntry {
            reference: parsed.whole(),
            manifest_digest: manifest_digest.to_owned(),
        };
        if let Err(error) = RefIndex::pulled(&self.store).set(&entry) {
            tracing::warn!(reference = %entry.reference, %error, "cannot record the pulled image");
        }
        if parsed.digest().is_some() || parsed.tag().is_none_or(|t| t == "latest") {
            return;
        }
        if let Err(error) = RefIndex::new(&self.store).set(&entry) {
            tracing::warn!(reference = %entry.reference, %error, "cannot record the resolved tag");
        }
    }

    /// The image recorded under this reference in the store's
    /// [`RefIndex`] (loaded, or a tag resolved before), if its manifest,
    /// config and layers are all stored: then no registry is asked
    /// (air-gapped sites). Anything missing or unreadable falls through
    /// to a registry pull.
    pub(super) async fn local(
        &self,
        parsed: &Reference,
        cx: &Context<'_>,
        progress: &impl Fn(PullProgress),
    ) -> Result<Option<PulledImage>, PullError> {
        let index = RefIndex::new(&self.store);
        self.stored(&index, parsed, cx, progress).await
    }

    /// The image the last successful pull of this reference brought, if
    /// it is whole in the store: for when the registry is out of reach.
    pub(super) async fn fallback(
        &self,
        parsed: &Reference,
        cx: &Context<'_>,
        progress: &impl Fn(PullProgress),
    ) -> Result<Option<PulledImage>, PullError> {
        let index = RefIndex::pulled(&self.store);
        self.stored(&index, parsed, cx, progress).await
    }

    async fn stored(
        &self,
        index: &RefIndex,
        parsed: &Reference,
        cx: &Context<'_>,
        progress: &impl Fn(PullProgress),
    ) -> Result<Option<PulledImage>, PullError> {
        let normalized = parsed.whole();
        let entry = match index.get(&normalized).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(reference = cx.reference, index = %index.dir().display(), %error, "cannot read the local reference index");
                return Ok(None);
            }
        };
        let Some(manifest) = self.whole_manifest(&entry.manifest_digest).await else {
            tracing::debug!(reference = cx.reference, "the stored image is incomplete");
            return Ok(None);
        };
        let kind = classify(&manifest).map_err(|source| PullError::Kind {
            reference: cx.reference.to_owned(),
            source,
        })?;
        let config = self
            .image_config(&kind, &manifest.config.digest, cx)
            .await?;
        let layers = manifest.layers.len();
        for (index, layer) in manifest.layers.iter().enumerate() {
            let size = u64::try_from(layer.size).unwrap_or(0);
            progress(PullProgress {
                layer: index,
                layers,
                bytes: size,
                total: size,
                cached: true,
            });
        }
        Ok(Some(PulledImage {
            reference: cx.reference.to_owned(),
            manifest_digest: entry.manifest_digest,
            config_digest: manifest.config.digest.clone(),
            kind,
            config,
            layers: (manifest.layers.iter())
                .map(|layer| (layer.digest.clone(), layer.media_type.clone()))
                .collect(),
        }))
    }

    /// The stored image manifest `digest`, if its config and layers are
    /// stored too.
    async fn whole_manifest(&self, digest: &str) -> Option<OciImageManifest> {
        let bytes = self.store.read(digest, MAX_CONFIG_BYTES).await.ok()?;
        let manifest: OciImageManifest = serde_json::from_slice(&bytes).ok()?;
        let whole = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .all(|desc| self.store.has(&desc.digest));
        whole.then_some(manifest)
    }
}
