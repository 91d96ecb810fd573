//! The instances this host serves right now, by id: what the gateway
//! dispatches local requests to. The supervisor adds an instance once it is
//! running and removes it when it stops; requests already in flight keep
//! their own handle and finish.

use crate::wasm::WasmInstance;
use atoll_sdk::spec::PortMapping;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

/// How a local instance is reached.
#[derive(Clone)]
pub enum Local {
    /// A component, called in-process.
    Wasm(WasmInstance),
    /// A container, reached over the host's bridge at its address.
    Container {
        app: String,
        address: Ipv4Addr,
        ports: Vec<PortMapping>,
    },
}

impl Local {
    /// The container port behind published port `port`.
    pub fn target_port(&self, port: u16) -> Option<u16> {
        match self {
            Local::Wasm(_) => None,
            Local::Container { ports, .. } => {
                ports.iter().find(|p| p.published == port).map(|p| p.target)
            }
        }
    }
}

#[derive(Clone, Default)]
pub struct LocalInstances {
    map: Arc<RwLock<HashMap<String, Local>>>,
}

impl LocalInstances {
    pub fn get(&self, id: &str) -> Option<Local> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn insert(&self, id: &str, inst: Local) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), inst);
    }

    /// Apps with at least one container on this host.
    pub fn container_apps(&self) -> std::collections::BTreeSet<String> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|l| match l {
                Local::Container { app, .. } => Some(app.clone()),
                Local::Wasm(_) => None,
            })
            .collect()
    }

    pub fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
