//! The gateway's parsing of the hop headers of a forwarded call and its
//! routing table (first byte: which). A call marked the way a sending
//! host marks it is read back as the instance and port it was for; a
//! table built from any endpoints leads each published port to a service
//! that publishes it, and a rebuild keeps the balancer's counters.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use atoll_runtime::fuzzing::{
    HOP_HEADER, INSTANCE_HEADER, PORT_HEADER, Table, allows_published, build, forwarded_to,
};
use atoll_sdk::protocol::Endpoints;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 5] = [
    HOP_HEADER,
    INSTANCE_HEADER,
    PORT_HEADER,
    "x-atoll-published",
    "host",
];

fn headers(u: &mut Unstructured) -> arbitrary::Result<()> {
    // Any headers: read only when all three are there and readable.
    let mut map = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let name = NAMES[usize::from(u8::arbitrary(u)?) % NAMES.len()];
        let value: Vec<u8> = Vec::arbitrary(u)?;
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            map.append(name, v);
        }
    }
    let text = |n: &str| map.get(n).and_then(|v| v.to_str().ok());
    let expected = match (text(HOP_HEADER), text(INSTANCE_HEADER), text(PORT_HEADER)) {
        (Some(_), Some(id), Some(port)) => port.parse::<u16>().ok().map(|p| (id.to_string(), p)),
        _ => None,
    };
    assert_eq!(forwarded_to(&map), expected, "{map:?}");

    // Marked as a sending host marks it.
    let id: String = String::arbitrary(u)?;
    let port = u16::arbitrary(u)?;
    let mut sent = HeaderMap::new();
    sent.insert(HOP_HEADER, HeaderValue::from_static("1"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        sent.insert(INSTANCE_HEADER, v);
    }
    sent.insert(PORT_HEADER, HeaderValue::from(port));
    // Instance ids are the server's: printable ASCII.
    if id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        assert_eq!(forwarded_to(&sent), Some((id, port)));
    }
    Ok(())
}

fn table(data: &[u8]) {
    let Ok(all) = serde_json::from_slice::<BTreeMap<String, Endpoints>>(data) else {
        return;
    };
    let first = build(&all, &Table::default());
    for (port, route) in &first.by_port {
        assert!(
            route.ports.iter().any(|p| p.published == *port),
            "port {port} leads to {}/{}, which does not publish it",
            route.app,
            route.service
        );
        assert!(allows_published(
            &first,
            (&route.app, &route.service),
            *port
        ));
        for eps in all.values() {
            if (eps.app.as_str(), eps.service.as_str())
                != (route.app.as_str(), route.service.as_str())
            {
                assert!(!allows_published(&first, (&eps.app, &eps.service), *port));
            }
        }
    }
    for ((app, service), route) in &first.by_service {
        assert_eq!((app, service), (&route.app, &route.service));
    }
    // Counters survive a rebuild (for ids that are unique, as the
    // server's are).
    let again = build(&all, &first);
    let counters = |t: &Table| {
        let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for route in t.by_service.values() {
            for e in &route.endpoints {
                out.entry(e.endpoint.id.clone())
                    .or_default()
                    .push(Arc::as_ptr(&e.outstanding) as usize);
            }
        }
        out
    };
    let (before, after) = (counters(&first), counters(&again));
    for (id, ptrs) in &before {
        if ptrs.len() == 1 {
            assert_eq!(after.get(id), Some(ptrs), "the counter of {id} was reset");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 2 {
        0 => {
            let _ = headers(&mut Unstructured::new(rest));
        }
        _ => table(rest),
    }
});
