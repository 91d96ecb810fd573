//! Content digests (`sha256:<hex>`) and the Wasm binary kind check.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the bytes.
pub fn sha256(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    let out = h.finalize();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in out {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Whether a digest string is well formed (`sha256:` and 64 lowercase hex).
pub fn is_valid(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// What a `.wasm` file holds, read from its 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    Component,
    CoreModule,
    NotWasm,
}

/// Components and core modules share the `\0asm` magic and differ in the
/// version/layer word that follows (core: 1 0 0 0, component: 0x0d 0 1 0).
pub fn wasm_kind(bytes: &[u8]) -> WasmKind {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return WasmKind::NotWasm;
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => WasmKind::CoreModule,
        [_, _, 1, 0] => WasmKind::Component,
        _ => WasmKind::NotWasm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_hex_sha256() {
        let d = sha256(b"abc");
        assert_eq!(
            d,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_valid(&d));
        assert!(!is_valid("sha256:xyz"));
        assert!(!is_valid("md5:00"));
    }

    #[test]
    fn tells_components_from_modules() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), WasmKind::CoreModule);
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert_eq!(wasm_kind(b"hello world"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b"\0as"), WasmKind::NotWasm);
    }
}
