//! Builds a small container image as an OCI image layout: busybox's static
//! binary as `httpd` (serving `/www`, with CGI scripts that print the
//! container's hostname — its instance id — and that call a service of the
//! app by name) plus a few applets.

use sha2::{Digest, Sha256};
use std::path::Path;

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The image's OCI architecture name for this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What the layout holds.
pub struct Built {
    pub layer_digest: String,
}

/// Writes the layout into `dir`. `arch` is the config's architecture (a
/// foreign one makes a wrong-platform image); `index` is the home page's
/// text (a different text makes a different layer).
pub fn busybox_httpd(dir: &Path, arch: &str, index: &str) -> Built {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian's busybox-static; scripts/setup installs it)");
    let mut tar = tar::Builder::new(Vec::new());
    for d in ["bin", "www", "www/cgi-bin", "etc", "tmp"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, d, std::io::empty()).expect("dir");
    }
    let mut file = |path: &str, mode: u32, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        tar.append_data(&mut h, path, data).expect("file");
    };
    file("bin/busybox", 0o755, &busybox);
    file("www/index.html", 0o644, index.as_bytes());
    file(
        "www/cgi-bin/whoami",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\ncat /etc/hostname\n",
    );
    // `/cgi-bin/health`: 200 while /tmp/healthy exists, else 500 (busybox
    // passes a CGI's own status line through).
    file(
        "www/cgi-bin/health",
        0o755,
        b"#!/bin/sh\nif [ -f /tmp/healthy ]; then printf 'HTTP/1.0 200 OK\\r\\n\\r\\nok\\n'; else printf 'HTTP/1.0 500 Sick\\r\\n\\r\\nsick\\n'; fi\n",
    );
    // `/cgi-bin/version`: the container's `VERSION`.
    file(
        "www/cgi-bin/version",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$VERSION\"\n",
    );
    // `/cgi-bin/call?NAME[:PORT]`: an HTTP call from inside the container
    // to a service of its app, by name.
    file(
        "www/cgi-bin/call",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\nwget -qO- \"http://$QUERY_STRING/\" 2>&1\n",
    );
    // `/cgi-bin/note?TEXT` keeps TEXT in /data/note; `/cgi-bin/note`
    // shows it (for services with a volume at /data).
    file(
        "www/cgi-bin/note",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\n[ -n \"$QUERY_STRING\" ] && echo \"$QUERY_STRING\" > /data/note\ncat /data/note 2>&1\n",
    );
    // `/cgi-bin/tcp?NAME:PORT`: a plain TCP exchange with a service of the
    // app by name; `/bin/echo1` answers one line on such a port.
    file(
        "www/cgi-bin/tcp",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho ping | nc -w 2 \"${QUERY_STRING%:*}\" \"${QUERY_STRING#*:}\" 2>&1\n",
    );
    // `/cgi-bin/burn`: spins the CPU for a while (shell arithmetic), for
    // autoscaling on CPU.
    file(
        "www/cgi-bin/burn",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\ni=0\nwhile test $i -lt 20000; do i=$((i+1)); done\necho burnt\n",
    );
    // `/cgi-bin/status`: the CGI's own /proc/self/status (capabilities);
    // `/cgi-bin/userns`: whether a user namespace can be made;
    // `/cgi-bin/bomb`: starts a fork bomb and answers at once.
    file(
        "www/cgi-bin/status",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\ncat /proc/self/status\n",
    );
    file(
        "www/cgi-bin/userns",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\nunshare -U true 2>&1\necho \"rc=$?\"\n",
    );
    // `/cgi-bin/file?PATH`: the file's owner and mode, then its content.
    file(
        "www/cgi-bin/file",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\nls -ln \"$QUERY_STRING\" 2>&1\ncat \"$QUERY_STRING\" 2>&1\n",
    );
    file(
        "www/cgi-bin/bomb",
        0o755,
        b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\n(f(){ f|f& }; f) </dev/null >/dev/null 2>&1 &\necho started\n",
    );
    file(
        "bin/echo1",
        0o755,
        b"#!/bin/sh\nread line\necho \"echo:$line\"\n",
    );
    file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/www:/bin/false\n",
    );
    for applet in [
        "sh", "httpd", "cat", "tail", "sleep", "wget", "nc", "test", "touch", "rm", "unshare",
    ] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    let raw = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    let layer = gz.finish().expect("gzip");
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Cmd": ["/bin/httpd", "-f", "-vv", "-p", "8080", "-h", "/www"],
            "Env": ["PATH=/bin"],
            "WorkingDir": "/www"
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(&raw)]}
    });
    let config = serde_json::to_vec(&config).expect("config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(&layer), "size": layer.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs dir");
    for blob in [&layer, &config, &manifest] {
        let d = digest(blob);
        std::fs::write(blobs.join(&d["sha256:".len()..]), blob).expect("blob");
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest(&manifest), "size": manifest.len()}]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index");
    Built {
        layer_digest: digest(&layer),
    }
}

/// A header with every numeric field set, as real image builders write.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    h
}
