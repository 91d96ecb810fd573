//! The buckets a host reads, and only those: its assignment key, the
//! routing tables (endpoints) and the components (artifacts). A host with
//! its own NATS user may read nothing else; one allowed to create buckets
//! (a lab cluster without identities) still makes missing ones, so that
//! hosts may start before any server.

use super::{BucketError, Layout, open_kv, open_objects};
use crate::protocol::Names;
use async_nats::jetstream::{self, kv, object_store};

#[derive(Clone)]
pub struct HostBuckets {
    pub js: jetstream::Context,
    pub names: Names,
    pub assignments: kv::Store,
    pub endpoints: kv::Store,
    pub artifacts: object_store::ObjectStore,
}

impl HostBuckets {
    pub async fn open(
        client: async_nats::Client,
        cluster: &str,
    ) -> Result<HostBuckets, BucketError> {
        let js = jetstream::new(client);
        let names = Names::new(cluster);
        let l = Layout::new(&names);
        Ok(HostBuckets {
            assignments: open_kv(&js, l.assignments).await?,
            endpoints: open_kv(&js, l.endpoints).await?,
            artifacts: open_objects(&js, l.artifacts).await?,
            js,
            names,
        })
    }
}
