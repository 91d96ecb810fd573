//! Tests of the blob store with in-memory readers.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};

use super::*;

/// A store in a fresh temp dir, removed on drop.
struct TestStore {
    dir: PathBuf,
    store: BlobStore,
}

impl TestStore {
    fn new(test: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "atoll-store-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = BlobStore::open(&dir).unwrap();
        Self { dir, store }
    }

    fn temp_files(&self) -> usize {
        std::fs::read_dir(self.dir.join("tmp")).unwrap().count()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Yields some bytes, then an error.
struct FailingReader(Option<Vec<u8>>);

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0.take() {
            Some(bytes) => {
                buf.put_slice(&bytes);
                Poll::Ready(Ok(()))
            }
            None => Poll::Ready(Err(io::Error::other("connection reset"))),
        }
    }
}

#[tokio::test]
async fn stores_and_finds_by_digest() {
    let t = TestStore::new("put");
    let data = b"hello layer";
    let digest = sha256_digest(data);
    assert!(!t.store.has(&digest));
    let path = t
        .store
        .put_stream(&digest, Some(data.len() as u64), &data[..])
        .await
        .unwrap();
    assert_eq!(path, t.store.path(&digest).unwrap());
    assert!(path.ends_with(format!("blobs/sha256/{}", sha256_hex(&digest).unwrap())));
    assert!(t.store.has(&digest));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(t.store.read(&digest, 100).await.unwrap(), data);
    assert!(matches!(
        t.store.read(&digest, 3).await,
        Err(StoreError::TooLarge { .. })
    ));
    // A second put of a stored blob does not read its input.
    let again = t
        .store
        .put_stream(&digest, None, FailingReader(None))
        .await
        .unwrap();
    assert_eq!(again, path);
    assert_eq!(t.temp_files(), 0);
}

#[tokio::test]
async fn digest_mismatch_leaves_nothing() {
    let t = TestStore::new("mismatch");
    let claimed = sha256_digest(b"expected");
    let err = t.store.put_bytes(&claimed, b"tampered").await.unwrap_err();
    match err {
        StoreError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, claimed);
            assert_eq!(actual, sha256_digest(b"tampered"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!t.store.has(&claimed));
    assert_eq!(t.temp_files(), 0);
}

#[tokio::test]
async fn size_limits() {
    let t = TestStore::new("limits");
    let store = t.store.clone().with_max_blob_bytes(10);
    let data = vec![7u8; 11];
    let digest = sha256_digest(&data);
    // Refused up front from the descriptor's size...
    let err = store
        .put_stream(&digest, Some(11), &data[..])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { limit: 10, .. }),
        "{err:?}"
    );
    // ...and while streaming when the size is unknown.
    let err = store
        .put_stream(&digest, None, &data[..])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    // A blob longer or shorter than its descriptor says.
    let err = t
        .store
        .put_stream(&digest, Some(5), &data[..])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                expected: 5,
                actual: 11,
                ..
            }
        ),
        "{err:?}"
    );
    let err = t
        .store
        .put_stream(&digest, Some(20), &data[..])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                expected: 20,
                actual: 11,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!t.store.has(&digest));
    assert_eq!(t.temp_files(), 0);
}

#[tokio::test]
async fn reader_failure_and_cancellation_remove_the_temp_file() {
    let t = TestStore::new("cancel");
    let digest = sha256_digest(b"whatever");
    let reader = FailingReader(Some(b"part".to_vec()));
    let err = t.store.put_stream(&digest, None, reader).await.unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert_eq!(t.temp_files(), 0);

    // A reader that stalls after a few bytes, cut off by a timeout.
    let (mut tx, rx) = tokio::io::duplex(64);
    tx.write_all(b"partial").await.unwrap();
    let put = t.store.put_stream(&digest, None, rx);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), put)
            .await
            .is_err()
    );
    assert_eq!(t.temp_files(), 0);
    drop(tx);
}

#[tokio::test]
async fn concurrent_puts_of_one_blob() {
    let t = TestStore::new("concurrent");
    let data = vec![42u8; 300_000];
    let digest = sha256_digest(&data);
    let (a, b) = tokio::join!(
        t.store.put_bytes(&digest, &data),
        t.store.put_bytes(&digest, &data)
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(t.store.read(&digest, 1 << 20).await.unwrap(), data);
}

#[test]
fn digests_must_be_sha256_hex() {
    let t = TestStore::new("digests");
    for bad in [
        "sha256:../../etc/passwd",
        "sha256:abc",
        "sha512:0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
    ] {
        assert!(
            matches!(t.store.path(bad), Err(StoreError::InvalidDigest { .. })),
            "{bad}"
        );
        assert!(!t.store.has(bad));
    }
    assert_eq!(
        sha256_digest(b""),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[tokio::test]
async fn missing_blob() {
    let t = TestStore::new("missing");
    let err = t.store.read(&sha256_digest(b"nope"), 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
}
