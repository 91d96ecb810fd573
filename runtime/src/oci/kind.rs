//! What a pulled manifest is: a Wasm component or a container image, and
//! the parts of a container image's config that decide how it runs.
//!
//! Pure functions over the manifest and config JSON, so that the rules can
//! be tested without a registry.

use oci_client::manifest::OciImageManifest;
use serde::Deserialize;

/// Layer media types that carry a Wasm module or component. Several exist
/// because each tool that pushes Wasm to registries picked its own:
/// `wkg`/wasm-pkg-tools (`application/wasm`), wasm-to-oci and the
/// containerd shims, and the Bytecode Alliance's component layer.
pub const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];

/// Config media types that mark an artifact as Wasm even before its layers
/// are looked at: the CNCF Wasm OCI artifact format (`v0`), and the older
/// `v1` one that `oci-client` itself uses.
pub const WASM_CONFIG_MEDIA_TYPES: &[&str] = &[
    "application/vnd.wasm.config.v0+json",
    "application/vnd.wasm.config.v1+json",
];

/// How an image is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A Wasm component: the one layer whose blob is the component.
    Wasm { layer_digest: String },
    /// A container image: its layers are unpacked into a root filesystem.
    Container,
}

/// Why a manifest cannot be run.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
pub enum KindError {
    #[error(
        "the manifest has {count} Wasm layers ({digests}); atoll runs exactly one component per image"
    )]
    SeveralWasmLayers { count: usize, digests: String },
    #[error(
        "the config media type {config_media_type} marks a Wasm artifact, but no layer has a Wasm media type (layers: {layer_media_types})"
    )]
    NoWasmLayer {
        config_media_type: String,
        layer_media_types: String,
    },
    #[error("the image config is not valid JSON: {message}")]
    BadConfig { message: String },
}

/// Classifies a manifest by its layer and config media types.
pub fn classify(manifest: &OciImageManifest) -> Result<ArtifactKind, KindError> {
    let wasm_layers: Vec<&str> = manifest
        .layers
        .iter()
        .filter(|layer| is_wasm_layer(&layer.media_type))
        .map(|layer| layer.digest.as_str())
        .collect();
    let wasm_config = WASM_CONFIG_MEDIA_TYPES.contains(&manifest.config.media_type.as_str());
    match wasm_layers.as_slice() {
        [digest] => Ok(ArtifactKind::Wasm {
            layer_digest: (*digest).to_owned(),
        }),
        [] if wasm_config => Err(KindError::NoWasmLayer {
            config_media_type: manifest.config.media_type.clone(),
            layer_media_types: join_or_none(manifest.layers.iter().map(|l| l.media_type.as_str())),
        }),
        [] => Ok(ArtifactKind::Container),
        several => Err(KindError::SeveralWasmLayers {
            count: several.len(),
            digests: several.join(", "),
        }),
    }
}

/// Whether a layer media type carries Wasm. Parameters (`;charset=..`) are
/// ignored because some tools append them.
pub fn is_wasm_layer(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or_default().trim();
    WASM_LAYER_MEDIA_TYPES.contains(&base)
}

fn join_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let joined: Vec<&str> = items.collect();
    if joined.is_empty() {
        "none".to_owned()
    } else {
        joined.join(", ")
    }
}

/// The parts of an OCI image config (`config` object of
/// `application/vnd.oci.image.config.v1+json`) that decide how a container
/// starts. Absent and `null` fields are both empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries, as in the image.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `Volumes`: paths that get a volume of their own, sorted.
    pub volumes: Vec<String>,
    /// `StopSignal` (`SIGQUIT`), as written.
    pub stop_signal: Option<String>,
    /// `Healthcheck`, as written.
    pub healthcheck: Option<ImageHealthcheck>,
    /// `ExposedPorts` (`8080/tcp`), sorted.
    pub exposed_ports: Vec<String>,
}

/// An image's `HEALTHCHECK`: durations in nanoseconds, zero meaning "the
/// default", as Docker writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageHealthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: u64,
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub start_period: u64,
    #[serde(default)]
    pub start_interval: u64,
    #[serde(default)]
    pub retries: u32,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RunConfig>,
}

// Field names as in the image spec (Go's capitalised JSON). `Option<Vec>`
// because images in the wild write `null` for an empty list.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    volumes: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    stop_signal: Option<String>,
    #[serde(default)]
    healthcheck: Option<ImageHealthcheck>,
    #[serde(default)]
    exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

impl ImageConfig {
    /// Parses an image config blob. Fields this type does not use are
    /// ignored; a config without a `config` object yields the defaults.
    pub fn parse(json: &[u8]) -> Result<Self, KindError> {
        let file: ConfigFile =
            serde_json::from_slice(json).map_err(|err| KindError::BadConfig {
                message: err.to_string(),
            })?;
        let Some(run) = file.config else {
            return Ok(Self::default());
        };
        Ok(Self {
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
            env: run.env.unwrap_or_default(),
            working_dir: run.working_dir.filter(|dir| !dir.is_empty()),
            user: run.user.filter(|user| !user.is_empty()),
            volumes: run.volumes.unwrap_or_default().into_keys().collect(),
            stop_signal: run.stop_signal.filter(|s| !s.is_empty()),
            healthcheck: run.healthcheck.filter(|h| !h.test.is_empty()),
            exposed_ports: run.exposed_ports.unwrap_or_default().into_keys().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config_media_type: &str, layers: &[(&str, &str)]) -> OciImageManifest {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(media_type, digest)| {
                serde_json::json!({"mediaType": media_type, "digest": digest, "size": 1})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": config_media_type, "digest": "sha256:c", "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    const TAR_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    #[test]
    fn tar_layers_are_a_container() {
        let m = manifest(OCI_CONFIG, &[(TAR_GZ, "sha256:a"), (TAR_GZ, "sha256:b")]);
        assert_eq!(classify(&m), Ok(ArtifactKind::Container));
    }

    #[test]
    fn each_wasm_layer_type_is_wasm() {
        for media_type in WASM_LAYER_MEDIA_TYPES {
            let m = manifest(OCI_CONFIG, &[(media_type, "sha256:w")]);
            let kind = classify(&m).unwrap();
            assert_eq!(
                kind,
                ArtifactKind::Wasm {
                    layer_digest: "sha256:w".into()
                }
            );
        }
    }

    #[test]
    fn wasm_config_with_wasm_layer_among_others() {
        let m = manifest(
            "application/vnd.wasm.config.v0+json",
            &[
                ("application/json", "sha256:meta"),
                ("application/wasm", "sha256:w"),
            ],
        );
        let kind = classify(&m).unwrap();
        assert_eq!(
            kind,
            ArtifactKind::Wasm {
                layer_digest: "sha256:w".into()
            }
        );
    }

    #[test]
    fn media_type_parameters_are_ignored() {
        assert!(is_wasm_layer("application/wasm; charset=binary"));
        assert!(!is_wasm_layer(TAR_GZ));
    }

    #[test]
    fn two_wasm_layers_are_refused() {
        let m = manifest(
            OCI_CONFIG,
            &[
                ("application/wasm", "sha256:1"),
                ("application/wasm", "sha256:2"),
            ],
        );
        let err = classify(&m).unwrap_err();
        assert!(matches!(err, KindError::SeveralWasmLayers { count: 2, .. }));
        assert!(err.to_string().contains("sha256:1, sha256:2"), "{err}");
    }

    #[test]
    fn wasm_config_without_wasm_layer_is_refused() {
        let m = manifest(
            "application/vnd.wasm.config.v0+json",
            &[(TAR_GZ, "sha256:a")],
        );
        let err = classify(&m).unwrap_err();
        assert!(err.to_string().contains(TAR_GZ), "{err}");
        let empty = manifest("application/vnd.wasm.config.v0+json", &[]);
        assert!(
            classify(&empty)
                .unwrap_err()
                .to_string()
                .contains("layers: none")
        );
    }

    #[test]
    fn parses_run_config() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{
            "Entrypoint":["/bin/app"],"Cmd":["--port","80"],"Env":["A=1"],
            "WorkingDir":"/srv","User":"1000:1000","ExposedPorts":{"80/tcp":{}},
            "Volumes":{"/data":{},"/cache":{}},"StopSignal":"SIGQUIT",
            "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Retries":2}}}"#;
        let config = ImageConfig::parse(json).unwrap();
        assert_eq!(config.entrypoint, ["/bin/app"]);
        assert_eq!(config.cmd, ["--port", "80"]);
        assert_eq!(config.env, ["A=1"]);
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.volumes, ["/cache", "/data"]);
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(config.exposed_ports, ["80/tcp"]);
        let check = config.healthcheck.expect("healthcheck");
        assert_eq!(check.test, ["CMD-SHELL", "true"]);
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (1_000_000_000, 0, 2)
        );
    }

    #[test]
    fn nulls_empties_and_missing_config_are_defaults() {
        let json = br#"{"config":{"Entrypoint":null,"Cmd":null,"WorkingDir":"","User":"","Volumes":null,"StopSignal":"","Healthcheck":{"Test":[]}}}"#;
        assert_eq!(ImageConfig::parse(json).unwrap(), ImageConfig::default());
        assert_eq!(ImageConfig::parse(b"{}").unwrap(), ImageConfig::default());
        assert!(ImageConfig::parse(b"not json").is_err());
    }
}
