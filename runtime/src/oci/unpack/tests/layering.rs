//! Well-formed images: layers merge, later entries replace earlier ones,
//! whiteouts and opaque directories hide lower layers only.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::oci::unpack::compression_for;

#[test]
fn two_layers_merge_and_overwrite() {
    let sandbox = Sandbox::new("overwrite");
    let lower = Tar::new()
        .dir("./etc/")
        .file("./etc/conf", "v1")
        .raw(EntryType::Regular, b"bin/tool", b"", b"#!", 0o4755)
        .symlink("sh", "/bin/tool")
        .hardlink("etc/conf.bak", "./etc/conf")
        .layer("0");
    let upper = Tar::new()
        .raw(EntryType::Regular, b"etc/conf", b"", b"v2", 0o600)
        .layer("1");
    let stats = sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            entries: 6,
            bytes: 6
        }
    );
    assert_eq!(sandbox.read("etc/conf"), "v2");
    assert_eq!(sandbox.mode("etc/conf"), 0o600);
    // The hard link kept the replaced file's inode.
    assert_eq!(sandbox.read("etc/conf.bak"), "v1");
    assert_eq!(sandbox.mode("bin/tool"), 0o755, "setuid is not kept");
    assert_eq!(
        fs::read_link(sandbox.dest().join("sh")).unwrap(),
        Path::new("/bin/tool")
    );
    assert_eq!(sandbox.mode(""), 0o755);
    // Only the final tree is left in the store.
    assert_eq!(fs::read_dir(sandbox.top.join("store")).unwrap().count(), 1);
}

#[test]
fn gzip_and_plain_layers_mix() {
    let sandbox = Sandbox::new("gzip");
    let lower = Tar::new()
        .file("a/big", &"z".repeat(100_000))
        .gzip_layer("sha256:aa");
    let upper = Tar::new().file("a/small", "s").layer("sha256:bb");
    let stats = sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(stats.bytes, 100_001);
    assert_eq!(sandbox.read("a/big").len(), 100_000);
    assert_eq!(sandbox.read("a/small"), "s");
}

#[test]
fn whiteouts_remove_lower_files_dirs_and_symlinks() {
    let sandbox = Sandbox::new("whiteout");
    let lower = Tar::new()
        .file("a/file", "f")
        .file("a/dir/sub/deep", "d")
        .dir("a/real/")
        .file("a/real/kept", "k")
        .symlink("a/link", "real")
        .file("a/keep", "k")
        .layer("0");
    let upper = Tar::new()
        .file("a/.wh.file", "")
        .file("a/.wh.dir", "")
        .file("a/.wh.link", "")
        .file("a/.wh.absent", "")
        .file("gone/.wh.x", "")
        .layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    for gone in ["a/file", "a/dir", "a/link", "gone"] {
        assert!(!sandbox.exists(gone), "{gone}");
    }
    // Removing the symlink did not touch what it pointed at.
    assert_eq!(sandbox.read("a/real/kept"), "k");
    assert_eq!(sandbox.read("a/keep"), "k");
    assert!(sandbox.listing().iter().all(|path| !path.contains(".wh.")));
}

#[test]
fn opaque_directory_hides_lower_layers_only() {
    let sandbox = Sandbox::new("opaque");
    let lower = Tar::new()
        .file("d/old", "o")
        .file("d/sub/old2", "o")
        .file("other/stays", "s")
        .layer("0");
    // Entries of the same layer survive whether they come before or after
    // the marker, including the lower directory `d/sub` they live in.
    let upper = Tar::new()
        .file("d/new", "n")
        .file("d/sub/fresh", "f")
        .file("d/.wh..wh..opq", "")
        .file("d/late", "l")
        .layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    for kept in ["d/new", "d/sub/fresh", "d/late", "other/stays"] {
        assert!(sandbox.exists(kept), "{kept}");
    }
    for gone in ["d/old", "d/sub/old2", "d/.wh..wh..opq"] {
        assert!(!sandbox.exists(gone), "{gone}");
    }
}

#[test]
fn whiteout_does_not_hide_its_own_layer() {
    let sandbox = Sandbox::new("samelayer");
    let lower = Tar::new().file("f", "lower").layer("0");
    let upper = Tar::new().file("f", "upper").file(".wh.f", "").layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(sandbox.read("f"), "upper");
}

#[test]
fn entry_types_replace_each_other() {
    let sandbox = Sandbox::new("types");
    let lower = Tar::new()
        .file("x", "file")
        .file("y/inner", "i")
        .symlink("z", "target")
        .layer("0");
    let upper = Tar::new()
        .dir("x/")
        .file("x/in", "i")
        .file("y", "now a file")
        .dir("z/")
        .layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(sandbox.read("x/in"), "i");
    assert_eq!(sandbox.read("y"), "now a file");
    assert!(
        fs::symlink_metadata(sandbox.dest().join("z"))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn directory_modes_apply_at_the_end() {
    let sandbox = Sandbox::new("dirmodes");
    let lower = Tar::new()
        .raw(EntryType::Directory, b"./", b"", b"", 0o750)
        .raw(EntryType::Directory, b"ro/", b"", b"", 0o555)
        .raw(EntryType::Directory, b"gone/", b"", b"", 0o700)
        .layer("0");
    // A later layer still writes into the read-only directory, and a
    // directory replaced by a file does not get the old mode.
    let upper = Tar::new().file("ro/f", "f").file("gone", "g").layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(sandbox.mode(""), 0o750);
    assert_eq!(sandbox.mode("ro"), 0o555);
    assert_eq!(sandbox.mode("gone"), 0o644);
    assert_eq!(sandbox.read("ro/f"), "f");
}

#[test]
fn ownership_follows_headers_when_root() {
    if !crate::oci::unpack::paths::running_as_root() {
        return; // lchown needs root; unprivileged unpacks skip it by design.
    }
    let sandbox = Sandbox::new("owner");
    let mut header = Header::new_gnu();
    header.set_path("owned").unwrap();
    header.set_size(1);
    header.set_mode(0o2755);
    header.set_uid(1234);
    header.set_gid(5678);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    let layer = blob("0", Compression::None, builder.into_inner().unwrap());
    sandbox.run(vec![layer]).unwrap();
    let meta = fs::metadata(sandbox.dest().join("owned")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    // The mode is set after lchown, and setgid is not kept.
    assert_eq!(meta.mode() & 0o7777, 0o755);
}

#[test]
fn media_types_map_to_compression() {
    assert_eq!(
        compression_for("application/vnd.oci.image.layer.v1.tar").unwrap(),
        Compression::None
    );
    assert_eq!(
        compression_for("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
        Compression::Gzip
    );
    assert_eq!(
        compression_for("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
        Compression::Gzip
    );
    let err = compression_for("application/vnd.oci.image.layer.v1.tar+zstd").unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    assert!(compression_for("application/vnd.oci.image.config.v1+json").is_err());
}
