//! The host's wasmtime engine: configuration, the epoch ticker, and
//! compiling + linking artifacts into [`Prepared`] components (cached in
//! memory and on disk by digest).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::WasmConfig;
use super::cache::{DiskCache, check_digest, check_is_component};
use super::error::{WasmError, chain};
use super::host::HostState;

/// How often the epoch advances: the granularity of request deadlines, and
/// how often a busy guest gives its thread back to other tasks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The host's Wasm engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct WasmEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    disk: DiskCache,
    pooling: bool,
    /// One cell per digest, so concurrent `prepare`s of the same artifact
    /// compile it once and the others wait for the result.
    prepared: Mutex<HashMap<String, Cached>>,
    /// Counts `prepare` calls: the order of last use.
    uses: AtomicU64,
    stats: Stats,
}

/// Compiled components no instance holds that stay in memory, the most
/// recently used first: a service scaled to zero, or rolled back to the
/// revision before, starts again without loading its code from disk.
pub const KEEP_IDLE: usize = 4;

struct Cached {
    cell: Arc<OnceCell<Prepared>>,
    last_used: u64,
}

impl Cached {
    /// Nothing but the cache holds it: no instance, no `prepare` under way.
    fn idle(&self) -> bool {
        Arc::strong_count(&self.cell) == 1
            && self
                .cell
                .get()
                .is_none_or(|p| Arc::strong_count(&p.inner) == 1)
    }
}

/// Which idle entries (digest, last use) to let go: all but the `keep`
/// most recently used.
fn to_release(mut idle: Vec<(String, u64)>, keep: usize) -> Vec<String> {
    idle.sort_by_key(|(_, last_used)| std::cmp::Reverse(*last_used));
    idle.into_iter().skip(keep).map(|(d, _)| d).collect()
}

#[derive(Default)]
struct Stats {
    compiled: AtomicU64,
    loaded_from_disk: AtomicU64,
    memory_hits: AtomicU64,
}

/// Where [`WasmEngine::prepare`] found its components so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Compiled from the artifact's bytes.
    pub compiled: u64,
    /// Loaded from compiled code on disk.
    pub loaded_from_disk: u64,
    /// Already prepared in this process.
    pub memory_hits: u64,
}

/// A component compiled and linked for this engine, ready to instantiate.
/// Cheap to clone.
#[derive(Clone)]
pub struct Prepared {
    inner: Arc<PreparedInner>,
}

struct PreparedInner {
    digest: String,
    pre: ProxyPre<HostState>,
}

impl Prepared {
    /// Digest of the artifact this was prepared from.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub(crate) fn pre(&self) -> &ProxyPre<HostState> {
        &self.inner.pre
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("pooling", &self.inner.pooling)
            .field("cache", &self.inner.disk)
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Creates the engine, its cache directory and its epoch ticker thread.
    pub fn new(cfg: WasmConfig) -> Result<Self, WasmError> {
        let (engine, pooling) = create_engine()?;
        let disk = DiskCache::new(&cfg.cache_dir, &engine)?;
        let mut linker = Linker::new(&engine);
        // The whole WASI 0.2 CLI world, not just the proxy world's imports:
        // components built with Rust's std import `wasi:cli/environment`,
        // `exit` and the terminal interfaces, which the proxy world lacks
        // (and others may import filesystem or sockets). The per-request
        // context grants nothing but TCP to the app's own services.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_err)?;
        super::wasi_keyvalue::add_to_linker(&mut linker).map_err(engine_err)?;
        super::names::add_to_linker(&mut linker).map_err(engine_err)?;
        wasmtime_wasi_config::add_to_linker(&mut linker, |s: &mut super::host::HostState| {
            wasmtime_wasi_config::WasiConfig::from(&*s.config)
        })
        .map_err(engine_err)?;
        spawn_epoch_ticker(&engine)?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                disk,
                pooling,
                prepared: Mutex::new(HashMap::new()),
                uses: AtomicU64::new(0),
                stats: Stats::default(),
            }),
        })
    }

    /// Whether instances come from the pooling allocator (`false`: the
    /// address space was too small for it and memory is mapped on demand).
    pub fn uses_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Counters of the compile cache.
    pub fn cache_stats(&self) -> CacheStats {
        let s = &self.inner.stats;
        CacheStats {
            compiled: s.compiled.load(Ordering::Relaxed),
            loaded_from_disk: s.loaded_from_disk.load(Ordering::Relaxed),
            memory_hits: s.memory_hits.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Compiles (once per digest) and links a component for serving HTTP.
    ///
    /// `digest` must be the content digest of `bytes` (the agent gets both
    /// from the artifact store): it keys the caches, so a wrong digest would
    /// serve another artifact's code. `bytes` is only read on a cache miss.
    /// Compilation runs on tokio's blocking pool.
    pub async fn prepare(&self, digest: &str, bytes: &[u8]) -> Result<Prepared, WasmError> {
        check_digest(digest)?;
        let cell = {
            let last_used = self.inner.uses.fetch_add(1, Ordering::Relaxed);
            let mut map = self.cache();
            let entry = map.entry(digest.to_string()).or_insert_with(|| Cached {
                cell: Arc::default(),
                last_used,
            });
            entry.last_used = last_used;
            entry.cell.clone()
        };
        if let Some(prepared) = cell.get() {
            self.inner.stats.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(prepared.clone());
        }
        let prepared = cell
            .get_or_try_init(|| async {
                let this = self.clone();
                let digest = digest.to_string();
                let bytes = bytes.to_vec();
                let task_digest = digest.clone();
                tokio::task::spawn_blocking(move || this.load_or_compile(&task_digest, &bytes))
                    .await
                    .map_err(|e| WasmError::Internal {
                        digest,
                        reason: format!("compile task failed: {e}"),
                    })?
            })
            .await?;
        Ok(prepared.clone())
    }

    /// Lets go of compiled components no instance uses any more, but for
    /// the [`KEEP_IDLE`] most recently used. Their compiled code stays on
    /// disk; instances still holding a [`Prepared`] keep working.
    pub fn release_unused(&self) {
        let mut map = self.cache();
        let idle = (map.iter())
            .filter(|(_, c)| c.idle())
            .map(|(d, c)| (d.clone(), c.last_used))
            .collect();
        for digest in to_release(idle, KEEP_IDLE) {
            map.remove(&digest);
        }
    }

    /// How many components are compiled in memory.
    pub fn cached_components(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        (self.inner.prepared.lock()).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocking: disk cache, else validate + compile + write the cache; then
    /// link.
    fn load_or_compile(&self, digest: &str, bytes: &[u8]) -> Result<Prepared, WasmError> {
        let inner = &self.inner;
        let component = match inner.disk.load(&inner.engine, digest) {
            Some(component) => {
                inner.stats.loaded_from_disk.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(digest, "loaded compiled component from disk");
                component
            }
            None => {
                check_is_component(digest, bytes)?;
                let started = std::time::Instant::now();
                let component = Component::from_binary(&inner.engine, bytes).map_err(|e| {
                    WasmError::Compile {
                        digest: digest.to_string(),
                        reason: chain(&e),
                    }
                })?;
                inner.stats.compiled.fetch_add(1, Ordering::Relaxed);
                tracing::info!(digest, elapsed = ?started.elapsed(), "compiled component");
                inner.disk.store(digest, &component);
                component
            }
        };
        let link = |e: wasmtime::Error| WasmError::Link {
            digest: digest.to_string(),
            reason: chain(&e),
        };
        let pre = inner.linker.instantiate_pre(&component).map_err(link)?;
        let pre = ProxyPre::new(pre).map_err(link)?;
        Ok(Prepared {
            inner: Arc::new(PreparedInner {
                digest: digest.to_string(),
                pre,
            }),
        })
    }
}

fn engine_err(e: wasmtime::Error) -> WasmError {
    WasmError::Engine { reason: chain(&e) }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines: the epoch advances every `EPOCH_TICK` and each store
    // checks its own deadline at every tick (see `instance.rs`).
    config.epoch_interruption(true);
    config
}

/// The pooling allocator reserves its whole pool of address space up front
/// (thousands of GiB with the defaults), which fails where the address
/// space is limited (`ulimit -v`, some 39-bit-VA kernels, sanitizers).
/// Instead of probing some other allocation, try the real thing and fall
/// back to on-demand allocation when it does not fit.
fn create_engine() -> Result<(Engine, bool), WasmError> {
    let mut pooled = base_config();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::default(),
    ));
    match Engine::new(&pooled) {
        Ok(engine) => {
            tracing::debug!("wasm engine uses the pooling allocator");
            Ok((engine, true))
        }
        Err(e) => {
            tracing::warn!(error = %chain(&e), "pooling allocator unavailable; wasm instances use on-demand allocation");
            let engine = Engine::new(&base_config()).map_err(engine_err)?;
            Ok((engine, false))
        }
    }
}

/// One thread per engine advances its epoch. It holds only a weak handle,
/// so it ends by itself once the engine and everything built from it
/// (components, stores) are gone.
fn spawn_epoch_ticker(engine: &Engine) -> Result<(), WasmError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("atoll-wasm-epoch".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| WasmError::Engine {
            reason: format!("starting the epoch thread failed: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::to_release;

    #[test]
    fn idle_components_beyond_the_most_recently_used_are_released() {
        let idle = |v: &[(&str, u64)]| v.iter().map(|(d, u)| (d.to_string(), *u)).collect();
        let mut out = to_release(idle(&[("a", 1), ("b", 5), ("c", 3), ("d", 2)]), 2);
        out.sort();
        assert_eq!(out, ["a", "d"], "b and c were used last");
        assert!(to_release(idle(&[("a", 1)]), 4).is_empty());
        assert_eq!(to_release(idle(&[("a", 1), ("b", 2)]), 0).len(), 2);
    }
}
