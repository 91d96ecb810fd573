//! Choosing the manifest for this host from a multi-platform image index.
//!
//! `oci-client` has a platform resolver hook, but it returns only
//! `Option<digest>`: a miss becomes "no entry found ... matching client's
//! default platform", without saying what the image does offer. So the
//! puller fetches the index itself and calls [`select`], whose error lists
//! the platforms on offer.

use std::fmt;

use oci_client::manifest::ImageIndexEntry;

/// An OCI platform: `os/architecture[/variant]`, with Go's names
/// (`amd64`, `arm64`), as in image indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// The platform this binary runs on. Containers are Linux-only here.
    pub fn host() -> Self {
        Self::for_rust_arch(std::env::consts::ARCH)
    }

    /// Maps Rust's `target_arch` names to the Go names used in indexes.
    /// 32-bit `arm` is taken as v7: atoll does not build for older ARM.
    pub fn for_rust_arch(arch: &str) -> Self {
        let (architecture, variant) = match arch {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Self::new("linux", architecture, variant)
    }

    fn of_entry(entry: &ImageIndexEntry) -> Option<Self> {
        let platform = entry.platform.as_ref()?;
        Some(Self {
            os: platform.os.to_string(),
            architecture: platform.architecture.to_string(),
            variant: platform.variant.clone().filter(|v| !v.is_empty()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// No manifest in the index fits the host.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
#[error("image {reference} has no {wanted} variant; it offers {}", offered_list(.offered))]
pub struct PlatformError {
    pub reference: String,
    pub wanted: Platform,
    /// Distinct platforms named by the index, in index order, without the
    /// `unknown/unknown` entries that carry build attestations.
    pub offered: Vec<String>,
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        "no platform (no entry names one)".to_owned()
    } else {
        offered.join(", ")
    }
}

/// Picks the digest of the manifest for `wanted` from an index's entries.
///
/// An entry matches on os and architecture. When `wanted` has a variant, an
/// entry with that variant is preferred over one with no variant (which
/// the spec allows for the architecture's default); an entry with another
/// variant never matches. When `wanted` has none, any variant matches
/// (`arm64` entries often say `v8`). If nothing matches, a Wasm entry
/// (architecture `wasm`, e.g. `wasip2/wasm`) is taken: components run on
/// any host.
pub fn select(
    reference: &str,
    entries: &[ImageIndexEntry],
    wanted: &Platform,
) -> Result<String, PlatformError> {
    let platforms: Vec<(Option<Platform>, &ImageIndexEntry)> = entries
        .iter()
        .map(|entry| (Platform::of_entry(entry), entry))
        .collect();
    let rank = |platform: &Platform| -> Option<u8> {
        if platform.os != wanted.os || platform.architecture != wanted.architecture {
            return None;
        }
        match (&wanted.variant, &platform.variant) {
            (Some(want), Some(have)) if want == have => Some(0),
            (Some(_), Some(_)) => None,
            (Some(_), None) => Some(1),
            (None, _) => Some(0),
        }
    };
    // min_by_key keeps the first of equal ranks: index order is the
    // publisher's preference.
    let best = platforms
        .iter()
        .filter_map(|(platform, entry)| Some((rank(platform.as_ref()?)?, *entry)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, entry)| entry)
        .or_else(|| {
            platforms.iter().find_map(|(platform, entry)| {
                platform
                    .as_ref()
                    .filter(|p| p.architecture == "wasm")
                    .map(|_| *entry)
            })
        });
    if let Some(entry) = best {
        return Ok(entry.digest.clone());
    }
    let mut offered: Vec<String> = Vec::new();
    for platform in platforms
        .iter()
        .filter_map(|(platform, _)| platform.as_ref())
    {
        let name = platform.to_string();
        if name != "unknown/unknown" && !offered.contains(&name) {
            offered.push(name);
        }
    }
    Err(PlatformError {
        reference: reference.to_owned(),
        wanted: wanted.clone(),
        offered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, platform: Option<&str>) -> ImageIndexEntry {
        let mut value = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": 1,
        });
        if let Some(platform) = platform {
            let mut parts = platform.split('/');
            let os = parts.next().unwrap();
            let architecture = parts.next().unwrap();
            let mut p = serde_json::json!({"os": os, "architecture": architecture});
            if let Some(variant) = parts.next() {
                p["variant"] = variant.into();
            }
            value["platform"] = p;
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn host_arch_names() {
        assert_eq!(Platform::for_rust_arch("x86_64").to_string(), "linux/amd64");
        assert_eq!(
            Platform::for_rust_arch("aarch64").to_string(),
            "linux/arm64"
        );
        assert_eq!(Platform::for_rust_arch("arm").to_string(), "linux/arm/v7");
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn picks_matching_os_and_arch() {
        let entries = [
            entry("sha256:amd", Some("linux/amd64")),
            entry("sha256:arm", Some("linux/arm64/v8")),
            entry("sha256:win", Some("windows/arm64")),
        ];
        let want = Platform::new("linux", "arm64", None);
        assert_eq!(select("img", &entries, &want).unwrap(), "sha256:arm");
        let want = Platform::new("linux", "amd64", None);
        assert_eq!(select("img", &entries, &want).unwrap(), "sha256:amd");
    }

    #[test]
    fn variant_exact_beats_unspecified_and_others_never_match() {
        let entries = [
            entry("sha256:v6", Some("linux/arm/v6")),
            entry("sha256:plain", Some("linux/arm")),
            entry("sha256:v7", Some("linux/arm/v7")),
        ];
        let v7 = Platform::new("linux", "arm", Some("v7"));
        assert_eq!(select("img", &entries, &v7).unwrap(), "sha256:v7");
        assert_eq!(select("img", &entries[..2], &v7).unwrap(), "sha256:plain");
        let err = select("img", &entries[..1], &v7).unwrap_err();
        assert_eq!(err.offered, ["linux/arm/v6"]);
    }

    #[test]
    fn miss_lists_offered_platforms() {
        let entries = [
            entry("sha256:a", Some("linux/amd64")),
            entry("sha256:att", Some("unknown/unknown")),
            entry("sha256:p", Some("linux/ppc64le")),
            entry("sha256:a2", Some("linux/amd64")),
            entry("sha256:none", None),
        ];
        let want = Platform::new("linux", "arm64", None);
        let err = select("ghcr.io/x/app:1", &entries, &want).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image ghcr.io/x/app:1 has no linux/arm64 variant; it offers linux/amd64, linux/ppc64le"
        );
    }

    #[test]
    fn empty_index_says_so() {
        let want = Platform::new("linux", "amd64", None);
        let err = select("img", &[entry("sha256:x", None)], &want).unwrap_err();
        assert!(err.to_string().contains("offers no platform"), "{err}");
    }

    #[test]
    fn wasm_entry_is_the_fallback() {
        let entries = [
            entry("sha256:s390", Some("linux/s390x")),
            entry("sha256:wasm", Some("wasip2/wasm")),
        ];
        let want = Platform::new("linux", "amd64", None);
        assert_eq!(select("img", &entries, &want).unwrap(), "sha256:wasm");
    }
}
