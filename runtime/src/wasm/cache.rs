//! What an artifact is (component, core module, garbage) and the on-disk
//! cache of compiled components.
//!
//! Compiled code is kept as `<cache_dir>/<digest>.<engine tag>.cwasm`. The
//! engine tag hashes everything that makes compiled code compatible with
//! an engine (wasmtime version, target, settings), so an upgraded host
//! misses the cache and recompiles instead of failing to load stale code.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use super::error::{WasmError, chain};

/// Longest digest accepted (an OCI sha512 digest is 135 characters).
const MAX_DIGEST_LEN: usize = 200;

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Version + layer fields of a core module (version 1, layer 0).
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// Version + layer fields of a component (pre-standard version 0x0d, layer 1).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// Refuses digests that cannot safely become a file name.
pub(crate) fn check_digest(digest: &str) -> Result<(), WasmError> {
    let invalid = |reason| WasmError::InvalidDigest {
        digest: digest.chars().take(MAX_DIGEST_LEN).collect(),
        reason,
    };
    if digest.is_empty() {
        return Err(invalid("it is empty"));
    }
    if digest.len() > MAX_DIGEST_LEN {
        return Err(invalid("it is longer than 200 characters"));
    }
    if digest.starts_with('.') {
        return Err(invalid("it starts with '.'"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.');
    if !digest.chars().all(allowed) {
        return Err(invalid(
            "only ASCII letters, digits, ':', '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// Checks the 8-byte preamble before handing the bytes to the compiler, so a
/// core module or a stray file gets an error that says what it is rather
/// than a parser message about some section.
pub(crate) fn check_is_component(digest: &str, bytes: &[u8]) -> Result<(), WasmError> {
    let not_wasm = |detail: String| WasmError::NotWasm {
        digest: digest.to_string(),
        detail,
    };
    if bytes.len() < 8 {
        return Err(not_wasm(format!(
            "only {} bytes long, shorter than a Wasm header",
            bytes.len()
        )));
    }
    if &bytes[..4] != WASM_MAGIC {
        let head: Vec<String> = bytes[..4].iter().map(|b| format!("{b:02x}")).collect();
        let hint = if bytes.starts_with(b"\x7fELF") || Engine::detect_precompiled(bytes).is_some() {
            " (looks like native or precompiled code; upload the .wasm file)"
        } else if bytes.trim_ascii_start().starts_with(b"(") {
            " (looks like WAT text; upload the binary .wasm)"
        } else {
            ""
        };
        return Err(not_wasm(format!(
            "missing the \\0asm magic: starts with {}{hint}",
            head.join(" ")
        )));
    }
    let version = [bytes[4], bytes[5], bytes[6], bytes[7]];
    match version {
        COMPONENT_VERSION => Ok(()),
        CORE_MODULE_VERSION => Err(WasmError::CoreModule {
            digest: digest.to_string(),
        }),
        other => Err(not_wasm(format!(
            "unsupported binary version/layer {other:02x?} (expected a component: {COMPONENT_VERSION:02x?})"
        ))),
    }
}

/// Compiled components on disk, for one engine configuration.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_tag: String,
}

impl DiskCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> Result<Self, WasmError> {
        std::fs::create_dir_all(dir).map_err(|source| WasmError::CacheDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    /// File of `digest` (already checked by [`check_digest`]). `:` is
    /// spelled `%3A` so that the name stays portable and cannot collide
    /// with another digest (`%` is not allowed in digests).
    pub(crate) fn path(&self, digest: &str) -> PathBuf {
        let name = digest.replace(':', "%3A");
        self.dir.join(format!("{name}.{}.cwasm", self.engine_tag))
    }

    /// Loads `digest`'s compiled code if the cache has it. A file that does
    /// not load (truncated, from another engine) is removed and reported as
    /// a miss: the caller recompiles and overwrites it.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        // Read into memory rather than `deserialize_file`, which maps the
        // file: if anything truncated a mapped file (a disk cleaner, an
        // operator), the host would die of SIGBUS at the next request.
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(digest, path = %path.display(), error = %e, "reading cached code failed; recompiling");
                return None;
            }
        };
        if Engine::detect_precompiled(&bytes) != Some(Precompiled::Component) {
            tracing::warn!(digest, path = %path.display(), "cached code is not a compiled component; recompiling");
            remove_quietly(&path);
            return None;
        }
        // SAFETY: `deserialize` trusts the bytes to be code that this
        // wasmtime produced. They were written by `store` below under a
        // name that includes the engine's compatibility tag, in a directory
        // that only the host agent may write (documented on `WasmConfig`);
        // wasmtime additionally checks their header and engine compatibility.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(digest, path = %path.display(), error = %chain(&e), "cached code does not load; recompiling");
                remove_quietly(&path);
                None
            }
        }
    }

    /// Writes `component`'s compiled code for the next start. Failing to do
    /// so only costs a recompilation later, so it is logged, not returned.
    pub(crate) fn store(&self, digest: &str, component: &Component) {
        let bytes = match component.serialize() {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(digest, error = %chain(&e), "serializing compiled component failed; not cached");
                return;
            }
        };
        let path = self.path(digest);
        // Write then rename, so a crash or a concurrent reader never sees a
        // half-written file under the final name.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{}.{}-{}.tmp",
            digest.replace(':', "%3A"),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let result = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            tracing::warn!(digest, path = %path.display(), error = %e, "writing compiled component failed; not cached");
            remove_quietly(&tmp);
        }
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "removing cache file failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_that_cannot_be_file_names_are_refused() {
        assert!(check_digest("sha256:0123abcd").is_ok());
        assert!(check_digest("").is_err());
        assert!(check_digest("../etc/passwd").is_err());
        assert!(check_digest("a/b").is_err());
        assert!(check_digest(".hidden").is_err());
        assert!(check_digest(&"a".repeat(201)).is_err());
    }

    #[test]
    fn preamble_tells_component_from_module_and_garbage() {
        let component = [b'\0', b'a', b's', b'm', 0x0d, 0, 1, 0];
        let module = [b'\0', b'a', b's', b'm', 1, 0, 0, 0];
        assert!(check_is_component("d", &component).is_ok());
        assert!(matches!(
            check_is_component("d", &module),
            Err(WasmError::CoreModule { .. })
        ));
        assert!(matches!(
            check_is_component("d", b"hello, world"),
            Err(WasmError::NotWasm { .. })
        ));
        assert!(matches!(
            check_is_component("d", b"\0as"),
            Err(WasmError::NotWasm { .. })
        ));
        let err = check_is_component("d", b"(component)").map_err(|e| e.to_string());
        assert!(matches!(err, Err(msg) if msg.contains("WAT")));
    }
}
