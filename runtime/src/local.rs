//! The instances this host serves right now, by id: what the gateway
//! dispatches local requests to. The supervisor adds an instance once it is
//! running and removes it when it stops; requests already in flight keep
//! their own handle and finish.

use crate::wasm::WasmInstance;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct LocalInstances {
    map: Arc<RwLock<HashMap<String, WasmInstance>>>,
}

impl LocalInstances {
    pub fn get(&self, id: &str) -> Option<WasmInstance> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn insert(&self, id: &str, inst: WasmInstance) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), inst);
    }

    pub fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
