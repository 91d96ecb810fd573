//! Crafted archives that try to write outside the root, hide behind
//! symlinks, or exhaust limits. Each must fail cleanly: the right error, no
//! dest, no partial directory, nothing new outside.

use std::os::unix::fs::MetadataExt;

use super::*;

#[test]
fn traversal_names_are_refused() {
    let cases: &[(EntryType, &str)] = &[
        (EntryType::Regular, "../evil"),
        (EntryType::Regular, "a/../../evil"),
        (EntryType::Regular, "/etc/atoll-unpack-evil"),
        (EntryType::Regular, "./../evil"),
        (EntryType::Directory, "../evildir/"),
        (EntryType::Symlink, "../evillink"),
    ];
    for &(kind, name) in cases {
        let sandbox = Sandbox::new("traversal");
        let layer = Tar::new()
            .file("a/ok", "fine")
            .raw(kind, name.as_bytes(), b"x", b"", 0o644)
            .layer("0");
        let err = sandbox.run(vec![layer]).unwrap_err();
        assert!(
            matches!(&err, UnpackError::PathEscape { layer, path } if layer == "0" && path == Path::new(name)),
            "{name}: {err}"
        );
        sandbox.assert_untouched(&[]);
    }
    assert!(!Path::new("/etc/atoll-unpack-evil").exists());
}

#[test]
fn empty_and_overlong_names_are_refused() {
    let sandbox = Sandbox::new("badname");
    let err = sandbox
        .run(vec![Tar::new().file("", "x").layer("0")])
        .unwrap_err();
    assert!(matches!(err, UnpackError::InvalidPath { .. }), "{err}");
    sandbox.assert_untouched(&[]);

    let limits = Limits {
        max_path_len: 10,
        ..Limits::default()
    };
    let err = sandbox
        .run_with(
            vec![Tar::new().file("abcdef/ghijkl", "x").layer("0")],
            &limits,
        )
        .unwrap_err();
    assert!(matches!(err, UnpackError::InvalidPath { .. }), "{err}");
    sandbox.assert_untouched(&[]);
}

#[test]
fn writing_through_an_absolute_symlink_is_refused() {
    let sandbox = Sandbox::new("symabs");
    let outside = sandbox.outside().display().to_string();
    let layer = Tar::new()
        .symlink("link", &outside)
        .file("link/file", "evil")
        .layer("0");
    let err = sandbox.run(vec![layer]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::SymlinkEscape { path, via, .. } if path == Path::new("link/file") && via == Path::new("link")),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn writing_through_a_relative_symlink_is_refused() {
    let sandbox = Sandbox::new("symrel");
    // From store/rootfs/link, ../.. is the sandbox top.
    let layer = Tar::new()
        .symlink("link", "../..")
        .file("link/file", "evil")
        .layer("0");
    let err = sandbox.run(vec![layer]).unwrap_err();
    assert!(matches!(err, UnpackError::SymlinkEscape { .. }), "{err}");
    sandbox.assert_untouched(&[]);
}

#[test]
fn writing_through_a_symlink_from_a_lower_layer_is_refused() {
    let sandbox = Sandbox::new("symlayers");
    let outside = sandbox.outside().display().to_string();
    let lower = Tar::new().dir("a/").symlink("a/etc", &outside).layer("0");
    let upper = Tar::new()
        .file("a/etc/passwd", "root::0:0::/:/bin/sh")
        .layer("1");
    let err = sandbox.run(vec![lower, upper]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::SymlinkEscape { layer, via, .. } if layer == "1" && via == Path::new("a/etc")),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn entries_replace_symlinks_instead_of_following_them() {
    let sandbox = Sandbox::new("symreplace");
    fs::write(sandbox.outside().join("victim"), "original").unwrap();
    let outside = sandbox.outside().display().to_string();
    let lower = Tar::new()
        .symlink("etc", &outside)
        .symlink("f", &format!("{outside}/victim"))
        .layer("0");
    // A directory entry replaces the symlink, so etc/passwd lands inside.
    let upper = Tar::new()
        .dir("etc/")
        .file("etc/passwd", "inside")
        .file("f", "inside too")
        .layer("1");
    sandbox.run(vec![lower, upper]).unwrap();
    assert_eq!(sandbox.read("etc/passwd"), "inside");
    assert_eq!(sandbox.read("f"), "inside too");
    assert!(
        fs::symlink_metadata(sandbox.dest().join("f"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        fs::read_to_string(sandbox.outside().join("victim")).unwrap(),
        "original"
    );
    assert_eq!(fs::read_dir(sandbox.outside()).unwrap().count(), 1);
}

#[test]
fn hard_links_must_target_regular_files_inside() {
    let sandbox = Sandbox::new("hardlink");
    fs::write(sandbox.outside().join("secret"), "s").unwrap();
    let outside = sandbox.outside().display().to_string();
    for target in [
        "/etc/passwd",
        "../x",
        "../../outside/secret",
        "dir",
        "missing",
        "sym",
        "viadir/secret",
    ] {
        let layer = Tar::new()
            .dir("dir/")
            .file("x", "x")
            .symlink("sym", &format!("{outside}/secret"))
            .symlink("viadir", &outside)
            .hardlink("h", target)
            .layer("0");
        let err = sandbox.run(vec![layer]).unwrap_err();
        assert!(
            matches!(&err, UnpackError::HardlinkOutside { path, target: t, .. } if path == Path::new("h") && t == Path::new(target)),
            "{target}: {err}"
        );
        sandbox.assert_untouched(&["secret"]);
        assert_eq!(
            fs::metadata(sandbox.outside().join("secret"))
                .unwrap()
                .nlink(),
            1
        );
    }
}

#[test]
fn whiteouts_cannot_escape() {
    for (name, escape) in [
        (".wh...", true),
        ("a/.wh...", true),
        ("../.wh.x", true),
        ("a/.wh.", false),
    ] {
        let sandbox = Sandbox::new("whiteout-escape");
        let layers = vec![
            Tar::new().file("a/x", "x").layer("0"),
            Tar::new().file(name, "").layer("1"),
        ];
        let err = sandbox.run(layers).unwrap_err();
        let ok = if escape {
            matches!(err, UnpackError::PathEscape { .. })
        } else {
            matches!(err, UnpackError::InvalidPath { .. })
        };
        assert!(ok, "{name}: {err}");
        sandbox.assert_untouched(&[]);
    }
}

#[test]
fn whiteouts_do_not_follow_symlinks() {
    for name in ["l/.wh.keep", "l/.wh..wh..opq"] {
        let sandbox = Sandbox::new("whiteout-symlink");
        fs::write(sandbox.outside().join("keep"), "k").unwrap();
        let outside = sandbox.outside().display().to_string();
        let layers = vec![
            Tar::new().symlink("l", &outside).layer("0"),
            Tar::new().file(name, "").layer("1"),
        ];
        let err = sandbox.run(layers).unwrap_err();
        assert!(
            matches!(err, UnpackError::SymlinkEscape { .. }),
            "{name}: {err}"
        );
        sandbox.assert_untouched(&["keep"]);
    }
}

#[test]
fn size_limit_is_enforced_across_layers() {
    let sandbox = Sandbox::new("size");
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let data = "x".repeat(600);
    let layers = vec![
        Tar::new().file("a", &data).layer("0"),
        Tar::new().file("b", &data).layer("1"),
    ];
    let err = sandbox.run_with(layers, &limits).unwrap_err();
    assert!(
        matches!(&err, UnpackError::TooLarge { layer, path, limit: 1000 } if layer == "1" && path == Path::new("b")),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn entry_limit_is_enforced() {
    let sandbox = Sandbox::new("entries");
    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let layer = Tar::new()
        .file("a", "")
        .file("b", "")
        .file("c", "")
        .file("d", "")
        .layer("0");
    let err = sandbox.run_with(vec![layer], &limits).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManyEntries { limit: 3, .. }),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn skipped_data_is_bounded() {
    // A directory claiming 2 MiB of data: the tar parser would skip it
    // silently, so the stream budget has to stop it.
    let sandbox = Sandbox::new("budget");
    let junk = vec![0u8; 2 << 20];
    let layer = Tar::new()
        .raw(EntryType::Directory, b"d/", b"", &junk, 0o755)
        .file("after", "x")
        .layer("0");
    let err = sandbox.run(vec![layer]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Malformed { after, .. } if after == Path::new("d/")),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn devices_and_fifos_are_refused() {
    for (kind, label) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let sandbox = Sandbox::new("device");
        let layer = Tar::new()
            .file("ok", "x")
            .raw(kind, b"dev/sda", b"", b"", 0o600)
            .layer("0");
        let err = sandbox.run(vec![layer]).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Unsupported { path, kind, .. } if path == Path::new("dev/sda") && kind == label),
            "{err}"
        );
        sandbox.assert_untouched(&[]);
    }
}

#[test]
fn broken_streams_name_the_failing_stage() {
    let sandbox = Sandbox::new("streams");
    // Valid gzip header, then a deflate block of the reserved type.
    let mut bad_gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    bad_gzip.extend([0xff; 64]);
    let err = sandbox
        .run(vec![blob("gz", Compression::Gzip, bad_gzip)])
        .unwrap_err();
    assert!(
        matches!(&err, UnpackError::Compression { layer, .. } if layer == "gz"),
        "{err}"
    );
    sandbox.assert_untouched(&[]);

    let mut truncated = Tar::new().file("a", &"x".repeat(4096)).bytes();
    truncated.truncate(2048);
    let err = sandbox
        .run(vec![blob("cut", Compression::None, truncated)])
        .unwrap_err();
    assert!(matches!(err, UnpackError::Malformed { .. }), "{err}");
    sandbox.assert_untouched(&[]);

    let bytes = Tar::new()
        .file("a", "x")
        .file("b", &"y".repeat(4096))
        .bytes();
    let reader = FailingReader {
        inner: Cursor::new(bytes),
        ok: 2048,
    };
    let layer = Layer {
        name: "net".into(),
        compression: Compression::None,
        reader: Box::new(reader),
    };
    let err = sandbox.run(vec![layer]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Io { path, .. } if path == Path::new("b")),
        "{err}"
    );
    sandbox.assert_untouched(&[]);
}

#[test]
fn existing_dest_is_left_alone() {
    let sandbox = Sandbox::new("destexists");
    fs::create_dir(sandbox.dest()).unwrap();
    fs::write(sandbox.dest().join("mine"), "m").unwrap();
    let err = sandbox
        .run(vec![Tar::new().file("a", "x").layer("0")])
        .unwrap_err();
    assert!(matches!(err, UnpackError::DestExists { .. }), "{err}");
    assert_eq!(
        sandbox.listing(),
        ["outside", "store", "store/rootfs", "store/rootfs/mine"]
    );
}
