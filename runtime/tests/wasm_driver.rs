//! End-to-end tests of the Wasm driver against the sample components
//! (`samples/hello`, `samples/faulty`), which these tests build first.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use atoll_runtime::wasm::{
    GuestBodyError, InstanceConfig, WasmConfig, WasmEngine, WasmError, WasmInstance,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};

/// Builds the sample components once per test binary. `cargo build` is a
/// no-op when they are current, and running it always means a test never
/// runs a stale component.
fn samples() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
        let output = std::process::Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            // Settings of the outer build must not leak into the samples'.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .map_err(|e| format!("running cargo in {}: {e}", dir.display()))?;
        if !output.status.success() {
            return Err(format!(
                "building the samples failed (is the wasm32-wasip2 target installed?):\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(dir.join("target/wasm32-wasip2/release"))
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

fn component(name: &str) -> Vec<u8> {
    let path = samples().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fresh cache directory per test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("atoll-wasm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn engine(cache: &TempDir) -> WasmEngine {
    WasmEngine::new(WasmConfig {
        cache_dir: cache.0.clone(),
    })
    .expect("engine")
}

fn config(timeout: Duration, memory_limit: Option<u64>) -> InstanceConfig {
    InstanceConfig {
        env: vec![
            ("ATOLL_INSTANCE".into(), "hello-7".into()),
            ("ATOLL_HOST".into(), "host-a".into()),
            ("ATOLL_SERVICE".into(), "hello".into()),
            ("ATOLL_APP".into(), "demo".into()),
        ],
        memory_limit,
        timeout,
        log: None,
        outbound: None,
        kv: None,
        config: Default::default(),
    }
}

async fn instance(cache: &TempDir, name: &str, cfg: InstanceConfig) -> WasmInstance {
    let engine = engine(cache);
    let prepared = engine
        .prepare(&format!("sha256:{name}"), &component(name))
        .await
        .expect("prepare");
    WasmInstance::new(&engine, prepared, cfg)
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "example.test")
        .body(Empty::new())
        .expect("request")
}

async fn text<B>(response: Response<B>) -> (StatusCode, String)
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let body = response.into_body().collect().await.expect("body");
    (
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    )
}

#[tokio::test]
async fn hello_answers_with_its_instance_and_host() {
    let cache = TempDir::new("hello");
    let hello = instance(&cache, "hello", config(Duration::from_secs(5), None)).await;

    let (status, body) = text(hello.handle(get("/")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "hello from hello-7 on host-a\n");

    let (status, body) = text(hello.handle(get("/json")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.trim(),
        r#"{"instance":"hello-7","host":"host-a","service":"hello","app":"demo"}"#
    );
}

#[tokio::test]
async fn wasi_config_gives_the_values_it_was_given_and_nothing_else() {
    let cache = TempDir::new("config");
    let values = [("db_password", "s3cr3t"), ("settings", "{}")];
    let cfg = InstanceConfig {
        config: atoll_runtime::wasm::ConfigValues(std::sync::Arc::new(
            values.into_iter().collect(),
        )),
        ..config(Duration::from_secs(5), None)
    };
    let faulty = instance(&cache, "faulty", cfg).await;
    let (status, body) = text(faulty.handle(get("/config/db_password")).await).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "s3cr3t"));
    let (status, _) = text(faulty.handle(get("/config/HOME")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without values, every key is absent (the import still links).
    let bare = instance(&cache, "faulty", config(Duration::from_secs(5), None)).await;
    let (status, _) = text(bare.handle(get("/config/db_password")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn environment_is_only_what_was_given() {
    let cache = TempDir::new("env");
    let cfg = InstanceConfig {
        env: Vec::new(),
        ..config(Duration::from_secs(5), None)
    };
    // The test process has HOME, PATH…; none of it may reach the guest.
    let hello = instance(&cache, "hello", cfg).await;
    let (status, body) = text(hello.handle(get("/")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "hello from ? on ?\n");
}

#[tokio::test]
async fn trap_is_a_500_naming_the_trap() {
    let cache = TempDir::new("trap");
    let faulty = instance(&cache, "faulty", config(Duration::from_secs(5), None)).await;
    let (status, body) = text(faulty.handle(get("/trap")).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("trapped"), "body: {body}");
    // The next request gets a fresh store and works.
    let (status, body) = text(faulty.handle(get("/")).await).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn trap_after_headers_cuts_the_body_off() {
    let cache = TempDir::new("partial");
    let faulty = instance(&cache, "faulty", config(Duration::from_secs(5), None)).await;
    let response = faulty.handle(get("/partial")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = Vec::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
            Some(Err(e)) => break e,
            None => panic!("body ended as if complete after {received:?}"),
        }
    };
    assert_eq!(received, b"partial\n");
    assert!(error.is::<GuestBodyError>(), "{error}");
    assert!(error.to_string().contains("trap"), "{error}");
}

#[tokio::test]
async fn endless_loop_is_cut_at_the_deadline() {
    let cache = TempDir::new("loop");
    let faulty = instance(&cache, "faulty", config(Duration::from_millis(200), None)).await;
    let started = Instant::now();
    let (status, body) = text(faulty.handle(get("/loop")).await).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "body: {body}");
    assert!(
        elapsed >= Duration::from_millis(190),
        "cut too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "cut too late: {elapsed:?}"
    );
}

/// `#[tokio::test]` runs on one thread: a guest spinning on it must still
/// let another request through (it yields at every epoch tick).
#[tokio::test]
async fn a_spinning_guest_does_not_hold_the_thread() {
    let cache = TempDir::new("fair");
    let faulty = instance(&cache, "faulty", config(Duration::from_secs(3), None)).await;
    let spinning = tokio::spawn({
        let faulty = faulty.clone();
        async move { faulty.handle(get("/loop")).await.status() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let (status, _) = text(faulty.handle(get("/")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?} behind the spinning guest",
        started.elapsed()
    );
    assert_eq!(spinning.await.expect("join"), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn memory_limit_stops_a_growing_guest_and_the_next_request_works() {
    let cache = TempDir::new("grow");
    let cfg = config(Duration::from_secs(10), Some(32 * 1024 * 1024));
    let faulty = instance(&cache, "faulty", cfg).await;
    let (status, body) = text(faulty.handle(get("/grow")).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "body: {body}");
    assert!(body.contains("memory limit of 32 MiB"), "body: {body}");
    let (status, body) = text(faulty.handle(get("/")).await).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn core_module_and_garbage_are_refused_clearly() {
    let cache = TempDir::new("refuse");
    let engine = engine(&cache);

    // The smallest valid core module: magic + version 1, no sections.
    let module = b"\0asm\x01\0\0\0";
    let err = engine.prepare("sha256:core", module).await.unwrap_err();
    assert!(matches!(err, WasmError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("sha256:core"), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");

    let err = engine
        .prepare("sha256:junk", b"GIF89a not wasm")
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::NotWasm { .. }), "{err}");
    assert!(err.to_string().contains("sha256:junk"), "{err}");

    // A component header followed by garbage fails in the compiler.
    let err = engine
        .prepare("sha256:broken", b"\0asm\x0d\0\x01\0garbage")
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::Compile { .. }), "{err}");

    let err = engine.prepare("../escape", b"").await.unwrap_err();
    assert!(matches!(err, WasmError::InvalidDigest { .. }), "{err}");
}

#[tokio::test]
async fn compiled_code_is_reused_from_memory_and_from_disk() {
    let cache = TempDir::new("cache");
    let bytes = component("hello");

    let first = engine(&cache);
    first
        .prepare("sha256:hello", &bytes)
        .await
        .expect("prepare");
    first
        .prepare("sha256:hello", &bytes)
        .await
        .expect("prepare");
    let stats = first.cache_stats();
    assert_eq!((stats.compiled, stats.memory_hits), (1, 1), "{stats:?}");

    // A new engine (a restarted host) loads the compiled code from disk.
    let second = engine(&cache);
    let prepared = second
        .prepare("sha256:hello", &bytes)
        .await
        .expect("prepare");
    let stats = second.cache_stats();
    assert_eq!(
        (stats.compiled, stats.loaded_from_disk),
        (0, 1),
        "{stats:?}"
    );

    let hello = WasmInstance::new(&second, prepared, config(Duration::from_secs(5), None));
    let (status, _) = text(hello.handle(get("/")).await).await;
    assert_eq!(status, StatusCode::OK);

    // A corrupt cache file is replaced, not trusted.
    for entry in std::fs::read_dir(&cache.0).expect("cache dir").flatten() {
        std::fs::write(entry.path(), b"corrupt").expect("corrupt cache file");
    }
    let third = engine(&cache);
    third
        .prepare("sha256:hello", &bytes)
        .await
        .expect("prepare");
    assert_eq!(third.cache_stats().compiled, 1);
}

#[tokio::test]
async fn compiled_components_nothing_uses_are_let_go_but_the_most_recent_few() {
    let cache = TempDir::new("release");
    let bytes = component("hello");
    let engine = engine(&cache);
    // Six components (one artifact under six digests), used in order; the
    // first is still served by an instance.
    let digests: Vec<String> = (1..=6).map(|i| format!("sha256:v{i}")).collect();
    let mut held = None;
    for d in &digests {
        let prepared = engine.prepare(d, &bytes).await.expect("prepare");
        if held.is_none() {
            held = Some(WasmInstance::new(
                &engine,
                prepared,
                config(Duration::from_secs(5), None),
            ));
        }
    }
    assert_eq!(engine.cached_components(), 6);

    engine.release_unused();
    // In use: v1. Idle: v2..v6, of which the four used last stay.
    assert_eq!(
        engine.cached_components(),
        5,
        "v2, the oldest idle one, is let go"
    );
    let before = engine.cache_stats();
    engine.prepare("sha256:v6", &bytes).await.expect("prepare");
    engine.prepare("sha256:v2", &bytes).await.expect("prepare");
    let after = engine.cache_stats();
    assert_eq!(
        after.memory_hits - before.memory_hits,
        1,
        "v6 stayed in memory"
    );
    assert_eq!(
        after.loaded_from_disk - before.loaded_from_disk,
        1,
        "v2 comes back from disk, not recompiled"
    );

    // The instance still serves after its neighbours went, and once it is
    // gone its component is idle like the rest.
    let hello = held.take().expect("held");
    let (status, _) = text(hello.handle(get("/")).await).await;
    assert_eq!(status, StatusCode::OK);
    drop(hello);
    engine.release_unused();
    assert_eq!(engine.cached_components(), wasm_keep_idle());
}

fn wasm_keep_idle() -> usize {
    atoll_runtime::wasm::KEEP_IDLE
}
