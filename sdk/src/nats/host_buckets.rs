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
    /// Opens them; `create`: makes missing ones (a host whose NATS user may
    /// not waits for a server to make them instead).
    pub async fn open(
        client: async_nats::Client,
        cluster: &str,
        create: bool,
    ) -> Result<HostBuckets, BucketError> {
        let js = jetstream::new(client);
        let names = Names::new(cluster);
        let l = Layout::new(&names);
        if !create {
            fn missing(bucket: &str, e: &dyn std::fmt::Display) -> BucketError {
                BucketError {
                    bucket: bucket.to_string(),
                    message: format!("not made yet by a server ({e})"),
                }
            }
            let (a, e, o) = (
                &l.assignments.bucket,
                &l.endpoints.bucket,
                &l.artifacts.bucket,
            );
            return Ok(HostBuckets {
                assignments: js.get_key_value(a).await.map_err(|x| missing(a, &x))?,
                endpoints: js.get_key_value(e).await.map_err(|x| missing(e, &x))?,
                artifacts: js.get_object_store(o).await.map_err(|x| missing(o, &x))?,
                js,
                names,
            });
        }
        Ok(HostBuckets {
            assignments: open_kv(&js, l.assignments).await?,
            endpoints: open_kv(&js, l.endpoints).await?,
            artifacts: open_objects(&js, l.artifacts).await?,
            js,
            names,
        })
    }
}
