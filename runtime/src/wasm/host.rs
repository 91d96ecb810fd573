//! The per-request store data: WASI and wasi-http contexts, the resource
//! table, the memory limiter and the request's deadline.

use std::time::Instant;

use super::links::{KvRoute, OutboundRoute, socket_check};
use super::outbound::ServiceHooks;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Most resources (streams, fields, pollables…) a guest may hold at once.
/// Bounds the host memory a guest can pin through handles.
const MAX_RESOURCES: usize = 10_000;
/// Most elements in one table. Tables live in host memory and are not
/// covered by the linear memory limit.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// `T` of every `Store<T>` the driver creates.
pub(crate) struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: ServiceHooks,
    /// Key-value storage for `wasi:keyvalue`; `None` denies it.
    pub(crate) kv: Option<KvRoute>,
    /// What `wasi:config/store` answers.
    pub(crate) config: std::sync::Arc<wasmtime_wasi_config::WasiConfigVariables>,
    pub(crate) limiter: MemoryLimiter,
    /// When the epoch callback stops the guest.
    pub(crate) deadline: Instant,
}

impl HostState {
    /// A deny-by-default context: the given environment and nothing else.
    pub(crate) fn new(
        env: &[(String, String)],
        memory_limit: u64,
        deadline: Instant,
        log: Option<OutputFile>,
        outbound: Option<OutboundRoute>,
        kv: Option<KvRoute>,
        config: std::sync::Arc<wasmtime_wasi_config::WasiConfigVariables>,
    ) -> Self {
        let mut builder = WasiCtx::builder();
        if let Some(log) = log {
            builder.stdout(log.clone()).stderr(log);
        }
        builder.envs(env).allow_udp(false);
        // TCP to the app's services only (see `names.rs`); without a route,
        // no sockets and no lookups at all.
        match &outbound {
            Some(route) => {
                builder
                    .allow_tcp(true)
                    .allow_ip_name_lookup(true)
                    .socket_addr_check(socket_check(route.clone()));
            }
            None => {
                builder.allow_tcp(false).allow_ip_name_lookup(false);
            }
        }
        let wasi = builder.build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self {
            table,
            wasi,
            http: WasiHttpCtx::new(),
            hooks: ServiceHooks { route: outbound },
            kv,
            config,
            limiter: MemoryLimiter::new(memory_limit),
            deadline,
        }
    }
}

impl HostState {
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Where the component's calls to its app's services go.
    pub(crate) fn outbound_route(&self) -> Option<OutboundRoute> {
        self.hooks.route.clone()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            // Outgoing requests go to the app's services, and nowhere else.
            hooks: &mut self.hooks,
        }
    }
}

/// The guest asked for more linear memory than its limit allows.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {requested} bytes in total)")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

/// Caps the sum of all linear memories of a store.
///
/// `StoreLimits` caps each memory on its own; a component has several core
/// instances (the program, the WASI adapter…), so the sum is what matches a
/// service's memory limit. Going over the cap traps at once rather than
/// failing `memory.grow`: a Rust guest would abort right after anyway, and
/// the trap lets the host name the cause.
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
    /// Growth that was allowed but is still in flight, undone if the host
    /// then fails to provide it.
    pending: u64,
    /// Set when the limit stopped the guest.
    pub(crate) exceeded: Option<MemoryLimitExceeded>,
    others: StoreLimits,
}

impl MemoryLimiter {
    /// Linear memory granted so far, in bytes.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            pending: 0,
            exceeded: None,
            others: StoreLimitsBuilder::new()
                .table_elements(MAX_TABLE_ELEMENTS)
                .build(),
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Memory creation also comes through here (with `current == 0`), so
        // summing the deltas accounts for every byte of every memory.
        let delta = desired.saturating_sub(current) as u64;
        let requested = self.used.saturating_add(delta);
        if requested > self.limit {
            let exceeded = MemoryLimitExceeded {
                limit: self.limit,
                requested,
            };
            let error = wasmtime::Error::msg(exceeded.to_string());
            self.exceeded = Some(exceeded);
            return Err(error);
        }
        if let Some(max) = maximum
            && desired > max
        {
            return Ok(false);
        }
        self.used = requested;
        self.pending = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!(error = %format!("{error:#}"), "guest memory growth failed on the host side");
        self.used = self.used.saturating_sub(self.pending);
        self.pending = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.others.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.others.instances()
    }

    fn tables(&self) -> usize {
        self.others.tables()
    }

    fn memories(&self) -> usize {
        self.others.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_all_memories_together() {
        let mut l = MemoryLimiter::new(10);
        assert!(matches!(l.memory_growing(0, 6, None), Ok(true)));
        assert!(matches!(l.memory_growing(0, 4, None), Ok(true)));
        assert!(l.memory_growing(4, 5, None).is_err());
        assert!(l.exceeded.is_some());
    }

    #[test]
    fn failed_growth_is_given_back() {
        let mut l = MemoryLimiter::new(10);
        assert!(matches!(l.memory_growing(0, 8, None), Ok(true)));
        assert!(l.memory_grow_failed(wasmtime::Error::msg("mmap")).is_ok());
        assert!(matches!(l.memory_growing(0, 10, None), Ok(true)));
    }

    #[test]
    fn declared_maximum_is_respected() {
        let mut l = MemoryLimiter::new(100);
        assert!(matches!(l.memory_growing(0, 8, Some(4)), Ok(false)));
        assert!(l.exceeded.is_none());
    }
}
