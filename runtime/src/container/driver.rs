//! Containers behind the host's driver seam: [`ContainerDriver`] starts,
//! adopts and removes them through [`Containers`]; [`RunningContainer`] is
//! one run of a container's init process, reached over the bridge.

use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use atoll_sdk::cluster::InstanceSpec;
use atoll_sdk::spec::{Health, PortMapping};
use futures::future::BoxFuture;

use super::facts::Facts;
use super::{ContainerError, Containers, Started, cgroup, process};
use crate::driver::{
    Artifact, Driver, ExecError, Exit, Lifecycle, Reach, Running, StartError, Usage,
};
use crate::file_values::FileValues;
use crate::gateway::Gateway;

pub(crate) struct ContainerDriver {
    containers: Arc<Containers>,
    host: String,
    /// Secret and config values, as the supervisor fetched them.
    files: Arc<FileValues>,
    /// Where the app's service addresses are served from.
    gateway: Weak<Gateway>,
}

impl ContainerDriver {
    pub(crate) fn new(
        containers: Arc<Containers>,
        host: &str,
        files: Arc<FileValues>,
        gateway: Weak<Gateway>,
    ) -> Self {
        ContainerDriver {
            containers,
            host: host.to_string(),
            files,
            gateway,
        }
    }

    fn running(&self, spec: &InstanceSpec, started: Started) -> Arc<dyn Running> {
        let facts = Facts::read(&self.containers.bundle(&spec.id));
        Arc::new(RunningContainer {
            health: facts.health,
            containers: self.containers.clone(),
            id: spec.id.clone(),
            app: spec.app.clone(),
            ports: spec.ports.clone(),
            memory_limit: super::spec::effective_limits(&spec.limits, &spec.reservations).memory,
            pid: started.pid,
            address: started.address,
        })
    }
}

impl From<ContainerError> for StartError {
    fn from(e: ContainerError) -> Self {
        if e.is_permanent() {
            StartError::Permanent(e.to_string())
        } else {
            StartError::Transient(e.to_string())
        }
    }
}

impl Driver for ContainerDriver {
    fn start<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        artifact: &'a Artifact,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>> {
        Box::pin(async move {
            let Artifact::Image(image) = artifact else {
                let m = format!("the container driver cannot run a {}", artifact.kind());
                return Err(StartError::Permanent(m));
            };
            let files = self.files.mounted(spec).map_err(StartError::Transient)?;
            if let Some(gw) = self.gateway.upgrade() {
                let vips = spec.service_vips.values().copied();
                if let Err(e) = gw.serve_addresses_of(&spec.app, vips).await {
                    tracing::warn!(instance = %spec.id, error = %e, "starting before the app's service addresses are served");
                }
            }
            let started = (self.containers.start(spec, image, &self.host, &files)).await?;
            Ok(self.running(spec, started))
        })
    }

    fn restart<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        _previous: Option<&'a Arc<dyn Running>>,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>> {
        Box::pin(async move {
            let started = self.containers.restart(&spec.id).await?;
            Ok(self.running(spec, started))
        })
    }

    fn adopt<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, Option<Arc<dyn Running>>> {
        Box::pin(async move {
            let started = self.containers.adopt(&spec.id).await?;
            tracing::info!(instance = %spec.id, pid = started.pid, "adopted a running container");
            Some(self.running(spec, started))
        })
    }

    fn remove<'a>(
        &'a self,
        id: &'a str,
        running: Option<Arc<dyn Running>>,
        grace: Duration,
    ) -> BoxFuture<'a, ()> {
        let pid = running.and_then(|r| r.pid());
        Box::pin(self.containers.remove(id, pid, grace))
    }

    fn teardown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.containers.teardown())
    }
}

/// One run of a container.
struct RunningContainer {
    containers: Arc<Containers>,
    /// The image's own check.
    health: Option<Health>,
    id: String,
    app: String,
    ports: Vec<PortMapping>,
    memory_limit: Option<u64>,
    pid: i32,
    address: Ipv4Addr,
}

impl Running for RunningContainer {
    fn reach(&self) -> Reach {
        Reach::Network {
            app: self.app.clone(),
            address: self.address,
            ports: self.ports.clone(),
        }
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::Process
    }

    fn ended(&self) -> BoxFuture<'_, Exit> {
        Box::pin(async move { process::wait(self.pid).await.unwrap_or(Exit::Unknown) })
    }

    fn exit_reason(&self, exit: Exit) -> String {
        self.containers
            .exit_reason(&self.id, exit, self.memory_limit)
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.containers.stop(&self.id, Some(self.pid), grace))
    }

    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(self.containers.exec_check(&self.id, argv, timeout))
    }

    fn usage(&self) -> Usage {
        let (cpu, memory) = cgroup::usage(&self.id);
        Usage {
            cpu_us: cpu.unwrap_or(0),
            memory: memory.unwrap_or(0),
        }
    }

    fn pid(&self) -> Option<i32> {
        Some(self.pid)
    }

    fn artifact_health(&self) -> Option<Health> {
        self.health.clone()
    }
}
