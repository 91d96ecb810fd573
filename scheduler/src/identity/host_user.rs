//! What a host's NATS user may do: its own subjects and keys, and the
//! tables every host reads. A compromised host can then neither pass for
//! another (heartbeats, load samples, log answers), nor read or write
//! another's assignment, nor touch desired state, statuses or tokens.
//! Pure: the subjects, from the cluster's names.
//!
//! The JetStream API is allowed per stream, and per key where the server
//! can check it: a consumer on the assignments stream only through the
//! create subject that carries its filter (`CONSUMER.CREATE.<stream>.
//! <name>.<filter>`, which the server refuses when the body's filter
//! differs), a direct get only of the host's own key.
//!
//! Component state (`wasi:keyvalue`) lives in one bucket per app, whose
//! names NATS permissions cannot match by prefix: a host gets it through a
//! second, short user JWT that names the buckets of the apps assigned to
//! it ([`state`]), minted by a server on request ([`crate::grants`]).

use atoll_sdk::nats::{kv_stream, objects_stream};
use atoll_sdk::protocol::Names;
use std::collections::BTreeSet;

/// What a user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

fn api(verb: &str, rest: &str) -> String {
    format!("$JS.API.{verb}.{rest}")
}

/// Reading a whole stream: its info, direct and stored gets, consumers
/// with any filter, flow control.
fn read_stream(stream: &str) -> Vec<String> {
    vec![
        api("STREAM.INFO", stream),
        api("DIRECT.GET", &format!("{stream}.>")),
        api("STREAM.MSG.GET", stream),
        api("CONSUMER.CREATE", stream),
        api("CONSUMER.CREATE", &format!("{stream}.>")),
        format!("$JS.FC.{stream}.>"),
    ]
}

/// The host's own user: its assignment key, the endpoints and components
/// (read), its heartbeat, load samples, wake-ups, state grant requests
/// (publish); its inbox, its heartbeat (to see a duplicate of itself),
/// its log requests (subscribe, answering them).
pub fn host(names: &Names, host: &str) -> Permissions {
    let assignments = names.assignments_bucket();
    let stream = kv_stream(&assignments);
    let own_key = format!("$KV.{assignments}.{host}");
    let mut publish = vec![
        api("STREAM.INFO", &stream),
        api("DIRECT.GET", &format!("{stream}.{own_key}")),
        api("CONSUMER.CREATE", &format!("{stream}.*.{own_key}")),
        format!("$JS.FC.{stream}.>"),
    ];
    publish.extend(read_stream(&kv_stream(&names.endpoints_bucket())));
    publish.extend(read_stream(&objects_stream(&names.artifacts_bucket())));
    publish.extend([
        names.heartbeat(host),
        names.metrics(host),
        names.wake(),
        names.state_grant(host),
        names.file_values(host),
    ]);
    Permissions {
        publish,
        subscribe: vec![
            format!("{}.>", atoll_sdk::nats::host_inbox(host)),
            names.heartbeat(host),
            names.log_requests(host),
            names.exec_requests(host),
        ],
    }
}

/// The state user of `host`: the component state buckets of `apps`
/// (read and write; the server makes them), its inbox.
pub fn state(names: &Names, host: &str, apps: &BTreeSet<String>) -> Permissions {
    let mut publish = Vec::new();
    for app in apps {
        let bucket = names.app_kv_bucket(app);
        publish.extend(read_stream(&kv_stream(&bucket)));
        publish.push(format!("$KV.{bucket}.>"));
    }
    Permissions {
        publish,
        subscribe: vec![format!("{}.>", atoll_sdk::nats::host_inbox(host))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether NATS would let `subject` through `allow` (tokens split on
    /// `.`; `*` one token, `>` the rest).
    fn allowed(allow: &[String], subject: &str) -> bool {
        allow.iter().any(|pattern| {
            let mut p = pattern.split('.');
            let mut s = subject.split('.');
            loop {
                match (p.next(), s.next()) {
                    (Some(">"), Some(_)) => return true,
                    (Some("*"), Some(_)) => {}
                    (Some(a), Some(b)) if a == b => {}
                    (None, None) => return true,
                    _ => return false,
                }
            }
        })
    }

    #[test]
    fn a_host_reaches_its_own_keys_and_subjects_only() {
        let n = Names::new("c");
        let p = host(&n, "h1");
        let may = |s: &str| allowed(&p.publish, s);
        assert!(may("atoll.c.hb.h1"));
        assert!(may("atoll.c.metrics.h1"));
        assert!(!may("atoll.c.hb.h2"), "another host's heartbeat");
        assert!(!may("atoll.c.metrics.h2"));
        assert!(!may("atoll.c.events"));
        assert!(may(
            "$JS.API.DIRECT.GET.KV_atoll-c-assignments.$KV.atoll-c-assignments.h1"
        ));
        assert!(!may(
            "$JS.API.DIRECT.GET.KV_atoll-c-assignments.$KV.atoll-c-assignments.h2"
        ));
        assert!(may(
            "$JS.API.CONSUMER.CREATE.KV_atoll-c-assignments.h1-x.$KV.atoll-c-assignments.h1"
        ));
        assert!(!may(
            "$JS.API.CONSUMER.CREATE.KV_atoll-c-assignments.h1-x.$KV.atoll-c-assignments.h2"
        ));
        assert!(!may("$JS.API.CONSUMER.CREATE.KV_atoll-c-assignments"));
        assert!(!may("$JS.API.STREAM.MSG.GET.KV_atoll-c-assignments"));
        for bucket in [
            "assignments",
            "apps",
            "endpoints",
            "status",
            "tokens",
            "leader",
        ] {
            assert!(!may(&format!("$KV.atoll-c-{bucket}.h1")), "writes {bucket}");
        }
        assert!(may("$JS.API.CONSUMER.CREATE.KV_atoll-c-endpoints"));
        for stream in [
            "apps",
            "status",
            "tokens",
            "scale",
            "leader",
            "removed-hosts",
        ] {
            let stream = format!("KV_atoll-c-{stream}");
            assert!(!may(&format!("$JS.API.STREAM.INFO.{stream}")), "{stream}");
            assert!(
                !may(&format!("$JS.API.CONSUMER.CREATE.{stream}")),
                "{stream}"
            );
            assert!(!may(&format!("$JS.API.DIRECT.GET.{stream}.x")), "{stream}");
        }
        assert!(
            !may("$JS.API.STREAM.CREATE.KV_atoll-c-kv-a"),
            "makes buckets"
        );
        assert!(!may("$JS.API.STREAM.DELETE.KV_atoll-c-endpoints"));
        let sub = |s: &str| allowed(&p.subscribe, s);
        assert!(sub("_INBOX_h1.abc.1") && sub("atoll.c.logs.h1"));
        assert!(!sub("_INBOX.abc") && !sub("_INBOX_h2.abc") && !sub("atoll.c.logs.h2"));
        assert!(!sub("atoll.c.hb.h2") && !sub("atoll.c.events"));
    }

    #[test]
    fn a_state_grant_names_its_apps_buckets_only() {
        let n = Names::new("c");
        let p = state(&n, "h1", &BTreeSet::from(["a".to_string()]));
        let may = |s: &str| allowed(&p.publish, s);
        assert!(may("$KV.atoll-c-kv-a.cart.x"));
        assert!(may(
            "$JS.API.DIRECT.GET.KV_atoll-c-kv-a.$KV.atoll-c-kv-a.cart.x"
        ));
        assert!(!may("$KV.atoll-c-kv-b.cart.x"));
        assert!(
            !may("$JS.API.STREAM.CREATE.KV_atoll-c-kv-a"),
            "the server makes it"
        );
        assert!(!may("$KV.atoll-c-apps.a"));
        assert!(!allowed(&p.subscribe, "_INBOX.x"));
    }
}
