//! `atoll inspect APP|INSTANCE|HOST [-o json|yaml]`: everything the server
//! knows about one object, for people and scripts (docker inspect,
//! kubectl get -o yaml). An app shows its status and its current revision
//! as stored (the normalised spec, the Compose text); an instance (its id
//! or a unique prefix) and a host show their rows from `ps` and `hosts`
//! whole. A name is looked up as an app, then an instance, then a host,
//! unless `--type` says which.

use crate::output::{Format, ServerArg, structured};
use anyhow::bail;
use atoll_sdk::client::{Client, ClientError};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum Kind {
    App,
    Instance,
    Host,
}

#[derive(clap::Args)]
pub struct Args {
    /// An app, an instance (id or unique prefix) or a host
    name: String,
    /// What the name is (default: the first that matches: app, instance,
    /// host)
    #[arg(long = "type", value_enum)]
    kind: Option<Kind>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value = "json")]
    output: Format,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let kinds = match args.kind {
        Some(k) => vec![k],
        None => vec![Kind::App, Kind::Instance, Kind::Host],
    };
    for kind in kinds {
        if let Some(found) = find(&client, kind, &args.name).await? {
            return structured(args.output, &found);
        }
    }
    let what = match args.kind {
        Some(Kind::App) => "app",
        Some(Kind::Instance) => "instance",
        Some(Kind::Host) => "host",
        None => "app, instance or host",
    };
    bail!("no {what} named {:?}", args.name)
}

/// `kind` named `name`, as one JSON object; `None` when there is none.
async fn find(client: &Client, kind: Kind, name: &str) -> anyhow::Result<Option<Value>> {
    match kind {
        Kind::App => {
            let status = match client.app(name).await {
                Ok(s) => s,
                Err(ClientError::Api { status: 404, .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let record = client.app_spec(name).await?;
            Ok(Some(json!({
                "kind": "app",
                "name": name,
                "status": status,
                "revision": record.revision,
                "deployed_at_ms": record.deployed_at_ms,
                "cause": record.cause,
                "stopped": record.stopped,
                "addresses": record.vips,
                "spec": record.spec,
                "compose": record.compose,
            })))
        }
        Kind::Instance => {
            let all = client.instances(None).await?;
            let exact = all.iter().find(|i| i.id == name);
            let prefixed: Vec<_> = all.iter().filter(|i| i.id.starts_with(name)).collect();
            let found: &atoll_sdk::api::InstanceView = match (exact, prefixed.as_slice()) {
                (Some(i), _) => i,
                (None, [i]) => i,
                (None, []) => return Ok(None),
                (None, many) => {
                    let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
                    bail!(
                        "{name:?} is a prefix of {} instances: {}",
                        ids.len(),
                        ids.join(", ")
                    )
                }
            };
            let mut v = serde_json::to_value(found)?;
            if let Value::Object(m) = &mut v {
                m.insert("kind".into(), json!("instance"));
            }
            Ok(Some(v))
        }
        Kind::Host => {
            let hosts = client.hosts().await?;
            let Some(h) = hosts.iter().find(|h| h.name == name) else {
                return Ok(None);
            };
            let mut v = serde_json::to_value(h)?;
            if let Value::Object(m) = &mut v {
                m.insert("kind".into(), json!("host"));
            }
            Ok(Some(v))
        }
    }
}
