//! What every listener of a host (published ports, service addresses, the
//! mesh, metrics) grants one client: a bounded time to send a request's
//! headers and each part of its body, and a bounded number of connections
//! at once, so slow or numerous clients cannot stall the host.
//!
//! The header timeout is also how long an idle keep-alive connection is
//! kept: hyper starts it whenever it waits for a request's first bytes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Defaults: nginx's `client_header_timeout` is 60 s, Node's keep-alive
/// 5 s; 10 s cuts a slowloris client early and keeps a client's
/// connection between requests a human makes.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once per listener (each costs a socket and a task).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// nginx's `client_body_timeout`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time to send a request's headers, and to start the next one on a
    /// kept-alive connection (`--header-timeout`).
    pub header_timeout: Duration,
    /// Connections at once per listener (`--max-connections`); more wait
    /// in the kernel's accept queue.
    pub max_connections: usize,
    /// Longest wait for the next part of a request's body
    /// (`--body-timeout`).
    pub body_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// The connections of one listener.
pub(super) struct Slots(Arc<Semaphore>);

impl Slots {
    pub fn new(limits: &ServerLimits) -> Slots {
        Slots(Arc::new(Semaphore::new(limits.max_connections.max(1))))
    }

    /// A slot for one connection, held until it closes; waits while the
    /// listener is full.
    pub async fn take(&self) -> OwnedSemaphorePermit {
        loop {
            // The semaphore is never closed; the loop only satisfies the
            // type.
            if let Ok(p) = self.0.clone().acquire_owned().await {
                return p;
            }
        }
    }
}
