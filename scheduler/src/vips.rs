//! Service addresses, allocated so that no two services of the cluster
//! share one. A 16-bit hash of the names alone would hand one app's
//! traffic to another on a collision, silently.
//!
//! Each service keeps the address it has; a new one starts at the hash of
//! its names (so a service that never collided keeps the address it had
//! before allocation existed) and moves on to the next free address of
//! `10.90.0.0/16`. Pure: the deploy path gives it the addresses the other
//! apps hold, and [`collisions`] finds any that two deploys racing on
//! different servers could still share.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use atoll_sdk::cluster::service_vip;
use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::App;

/// Addresses in `10.90.0.0/16` with a last octet of 1–254.
const USABLE: usize = 256 * 254;

/// The address after `v`, wrapping within `10.90.0.0/16` and skipping
/// last octets 0 and 255.
fn next(v: Ipv4Addr) -> Ipv4Addr {
    let [_, _, hi, lo] = v.octets();
    match lo {
        254.. => Ipv4Addr::new(10, 90, hi.wrapping_add(1), 1),
        _ => Ipv4Addr::new(10, 90, hi, lo + 1),
    }
}

/// Addresses for every service of `app`: those in `previous` that no
/// other app holds are kept, the rest allocated past `taken` (the other
/// apps' addresses). With the range full, a service gets its hash (and
/// [`collisions`] reports it).
pub(crate) fn allocate(
    app: &App,
    previous: &BTreeMap<String, Ipv4Addr>,
    taken: &BTreeSet<Ipv4Addr>,
) -> BTreeMap<String, Ipv4Addr> {
    let mut used = taken.clone();
    let mut out = BTreeMap::new();
    for svc in app.services.keys() {
        if let Some(&v) = previous.get(svc)
            && used.insert(v)
        {
            out.insert(svc.clone(), v);
        }
    }
    for svc in app.services.keys() {
        if out.contains_key(svc) {
            continue;
        }
        let start = service_vip(&app.name, svc);
        let free = std::iter::successors(Some(start), |v| Some(next(*v)))
            .take(USABLE)
            .find(|v| !used.contains(v))
            .unwrap_or(start);
        used.insert(free);
        out.insert(svc.clone(), free);
    }
    out
}

/// The addresses the apps other than `app` hold.
pub(crate) fn taken_by_others<'a>(
    records: impl Iterator<Item = &'a AppRecord>,
    app: &str,
) -> BTreeSet<Ipv4Addr> {
    records
        .filter(|r| r.spec.name != app)
        .flat_map(|r| r.spec.services.keys().map(|s| r.vip(s)))
        .collect()
}

/// Addresses two or more services share, each with its `app/service`s.
pub(crate) fn collisions<'a>(
    records: impl Iterator<Item = &'a AppRecord>,
) -> Vec<(Ipv4Addr, Vec<String>)> {
    let mut by_vip: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for r in records {
        for s in r.spec.services.keys() {
            by_vip
                .entry(r.vip(s))
                .or_default()
                .push(format!("{}/{s}", r.spec.name));
        }
    }
    by_vip.into_iter().filter(|(_, v)| v.len() > 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{app as record, service};

    fn app(name: &str, services: &[&str]) -> App {
        record(name, services.iter().map(|s| service(s)).collect()).spec
    }

    #[test]
    fn a_new_service_starts_at_its_hash_and_moves_past_taken_addresses() {
        let shop = app("shop", &["web", "db"]);
        let fresh = allocate(&shop, &BTreeMap::new(), &BTreeSet::new());
        assert_eq!(fresh["web"], service_vip("shop", "web"));
        assert_eq!(fresh["db"], service_vip("shop", "db"));
        // Another app holds web's hash, and the next address too.
        let hash = service_vip("shop", "web");
        let taken = BTreeSet::from([hash, next(hash)]);
        let moved = allocate(&shop, &BTreeMap::new(), &taken);
        assert_eq!(moved["web"], next(next(hash)));
        assert!(!taken.contains(&moved["db"]));
        assert_ne!(moved["web"], moved["db"]);
    }

    #[test]
    fn services_keep_their_address_unless_another_app_holds_it() {
        let shop = app("shop", &["web", "db"]);
        let previous = BTreeMap::from([
            ("web".to_string(), Ipv4Addr::new(10, 90, 7, 7)),
            ("db".to_string(), Ipv4Addr::new(10, 90, 8, 8)),
        ]);
        let kept = allocate(&shop, &previous, &BTreeSet::new());
        assert_eq!(kept, previous);
        let taken = BTreeSet::from([Ipv4Addr::new(10, 90, 8, 8)]);
        let moved = allocate(&shop, &previous, &taken);
        assert_eq!(moved["web"], Ipv4Addr::new(10, 90, 7, 7));
        assert_ne!(moved["db"], Ipv4Addr::new(10, 90, 8, 8));
    }

    #[test]
    fn addresses_wrap_within_the_range_and_skip_0_and_255() {
        assert_eq!(
            next(Ipv4Addr::new(10, 90, 3, 253)),
            Ipv4Addr::new(10, 90, 3, 254)
        );
        assert_eq!(
            next(Ipv4Addr::new(10, 90, 3, 254)),
            Ipv4Addr::new(10, 90, 4, 1)
        );
        assert_eq!(
            next(Ipv4Addr::new(10, 90, 255, 254)),
            Ipv4Addr::new(10, 90, 0, 1)
        );
    }

    #[test]
    fn a_shared_address_is_found_and_named() {
        let mut a = record("a", vec![service("web")]);
        let mut b = record("b", vec![service("api")]);
        let shared = Ipv4Addr::new(10, 90, 1, 2);
        a.vips.insert("web".into(), shared);
        b.vips.insert("api".into(), shared);
        let c = record("c", vec![service("web")]);
        assert_eq!(
            collisions([&a, &b, &c].into_iter()),
            vec![(shared, vec!["a/web".to_string(), "b/api".to_string()])]
        );
        let taken = taken_by_others([&a, &b, &c].into_iter(), "a");
        assert!(taken.contains(&shared) && taken.contains(&service_vip("c", "web")));
    }
}
