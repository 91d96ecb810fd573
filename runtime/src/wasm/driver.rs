//! Components behind the host's driver seam: [`WasmDriver`] prepares a
//! component (compiled once per digest by the [`WasmEngine`]) and gives
//! each instance its environment, limits, log and links; a
//! [`RunningComponent`] is served in-process, a fresh store per request.
//!
//! Nothing of a component runs between requests, so it never ends by
//! itself: it ends when the host stops it (its liveness check failed), and
//! a restart only starts its health verdict anew. When an instance goes,
//! compiled components no instance uses any more are let go
//! ([`WasmEngine::release_unused`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_sdk::cluster::InstanceSpec;
use futures::future::BoxFuture;
use http::{Request, Response};
use tokio::sync::watch;

use super::links::{ComponentLinks, KvRoute, OutboundRoute};
use super::{InstanceConfig, ResponseBody, WasmEngine, WasmInstance};
use crate::driver::{
    Artifact, Driver, ExecError, Exit, Handler, Lifecycle, Reach, Running, StartError, Usage,
};
use crate::file_values::{FileValues, Mounted};
use crate::logs::LogPaths;

pub(crate) struct WasmDriver {
    engine: WasmEngine,
    host: String,
    logs: LogPaths,
    links: ComponentLinks,
    files: Arc<FileValues>,
    /// The instances started here, by id, for restarts.
    instances: Mutex<HashMap<String, WasmInstance>>,
}

impl WasmDriver {
    pub(crate) fn new(
        engine: WasmEngine,
        host: &str,
        logs: LogPaths,
        links: ComponentLinks,
        files: Arc<FileValues>,
    ) -> Self {
        WasmDriver {
            engine,
            host: host.to_string(),
            logs,
            links,
            files,
            instances: Mutex::default(),
        }
    }

    fn instances(&self) -> std::sync::MutexGuard<'_, HashMap<String, WasmInstance>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn instance_config(&self, spec: &InstanceSpec, files: &[Mounted]) -> InstanceConfig {
        let mut env: Vec<(String, String)> = vec![
            ("ATOLL_APP".into(), spec.app.clone()),
            ("ATOLL_SERVICE".into(), spec.service.clone()),
            ("ATOLL_INSTANCE".into(), spec.id.clone()),
            ("ATOLL_HOST".into(), self.host.clone()),
        ];
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        InstanceConfig {
            env,
            memory_limit: spec.limits.memory,
            timeout: Duration::from_millis(spec.timeout_ms),
            log: self.logs.open_component(&spec.id).map(Arc::new),
            outbound: self.links.outbound.clone().map(|to| OutboundRoute {
                app: spec.app.clone(),
                to,
            }),
            kv: self.links.kv.clone().map(|store| KvRoute {
                app: spec.app.clone(),
                store,
            }),
            // By name; `wasi:config` values are strings.
            config: super::ConfigValues(Arc::new(
                (files.iter())
                    .map(|(m, v)| (m.name.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
            )),
        }
    }
}

impl Driver for WasmDriver {
    fn start<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        artifact: &'a Artifact,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>> {
        Box::pin(async move {
            let Artifact::Component { digest, bytes } = artifact else {
                let m = format!("the Wasm driver cannot run a {}", artifact.kind());
                return Err(StartError::Permanent(m));
            };
            // A component that does not compile or link never will.
            let prepared = (self.engine.prepare(digest, bytes).await)
                .map_err(|e| StartError::Permanent(e.to_string()))?;
            let files = self.files.mounted(spec).map_err(StartError::Transient)?;
            let config = self.instance_config(spec, &files);
            let instance = WasmInstance::new(&self.engine, prepared, config);
            self.instances().insert(spec.id.clone(), instance.clone());
            Ok(RunningComponent::start(instance))
        })
    }

    fn restart<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        _previous: Option<&'a Arc<dyn Running>>,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>> {
        // The same prepared instance serves on: every request gets a fresh
        // store anyway.
        let instance = self.instances().get(&spec.id).cloned();
        Box::pin(async move {
            instance.map(RunningComponent::start).ok_or_else(|| {
                StartError::Permanent("a component that never started cannot be restarted".into())
            })
        })
    }

    fn remove<'a>(
        &'a self,
        id: &'a str,
        running: Option<Arc<dyn Running>>,
        _grace: Duration,
    ) -> BoxFuture<'a, ()> {
        // Requests in flight hold their own handle; the instance's log
        // goes with it, and compiled code nothing uses any more.
        drop(running);
        self.instances().remove(id);
        self.logs.remove_component(id);
        self.engine.release_unused();
        Box::pin(async {})
    }
}

impl Handler for WasmInstance {
    fn handle(
        &self,
        req: Request<crate::gateway::RequestBody>,
    ) -> BoxFuture<'_, Response<ResponseBody>> {
        Box::pin(WasmInstance::handle(self, req))
    }
}

/// One component instance, from its start (or restart) until the host
/// stops it.
struct RunningComponent {
    instance: Arc<WasmInstance>,
    stopped: watch::Sender<bool>,
}

impl RunningComponent {
    fn start(instance: WasmInstance) -> Arc<dyn Running> {
        Arc::new(RunningComponent {
            instance: Arc::new(instance),
            stopped: watch::channel(false).0,
        })
    }
}

impl Running for RunningComponent {
    fn reach(&self) -> Reach {
        Reach::InProcess(self.instance.clone())
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::PerRequest
    }

    fn ended(&self) -> BoxFuture<'_, Exit> {
        let mut stopped = self.stopped.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, which the caller holds.
            let _ = stopped.wait_for(|s| *s).await;
            Exit::Unknown
        })
    }

    fn exit_reason(&self, _exit: Exit) -> String {
        "stopped by the host".to_string()
    }

    fn stop(&self, _grace: Duration) -> BoxFuture<'_, ()> {
        self.stopped.send_replace(true);
        Box::pin(async {})
    }

    fn exec<'a>(
        &'a self,
        _argv: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async { Err(ExecError::Unsupported("component")) })
    }

    fn usage(&self) -> Usage {
        let (cpu_us, memory) = self.instance.usage();
        Usage { cpu_us, memory }
    }
}
