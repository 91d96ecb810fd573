//! Published ports the server picks: a `ports:` entry without one (`"80"`,
//! the long form without `published`) arrives as published port 0, and
//! gets a port free in the whole cluster from [`RANGE`] (Kubernetes'
//! NodePort range), as Compose picks a random host port. The port stays
//! with the service's target across deploys while no other app took it,
//! so clients that learnt it keep working. `atoll ps` and `atoll inspect`
//! show it.

use atoll_sdk::spec::App;
use std::collections::BTreeSet;

/// Where picked ports come from.
pub(crate) const RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// No port of [`RANGE`] is free.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "services.{service}.ports: no free port left in {}-{} to publish target {target} on (give it one: \"PORT:{target}\")",
    RANGE.start(),
    RANGE.end()
)]
pub(crate) struct NoFreePort {
    pub service: String,
    pub target: u16,
}

/// Gives each port of `app` published as 0 a free one: the one the
/// service had for that target in `previous` (the app's current revision)
/// when it is still free, else the lowest free in [`RANGE`]. `taken`: the
/// ports other apps publish.
pub(crate) fn assign(
    app: &mut App,
    previous: Option<&App>,
    taken: &BTreeSet<u16>,
) -> Result<(), NoFreePort> {
    let mut used: BTreeSet<u16> = taken.clone();
    used.extend(
        (app.services.values())
            .flat_map(|s| &s.ports)
            .map(|p| p.published)
            .filter(|p| *p != 0),
    );
    for svc in app.services.values_mut() {
        let had = previous.and_then(|p| p.services.get(&svc.name));
        for port in svc.ports.iter_mut().filter(|p| p.published == 0) {
            let kept = (had.into_iter())
                .flat_map(|s| &s.ports)
                .find(|p| p.target == port.target && p.published != 0)
                .map(|p| p.published)
                .filter(|p| !used.contains(p));
            let picked = kept.or_else(|| RANGE.clone().find(|p| !used.contains(p)));
            let Some(picked) = picked else {
                return Err(NoFreePort {
                    service: svc.name.clone(),
                    target: port.target,
                });
            };
            port.published = picked;
            used.insert(picked);
        }
    }
    Ok(())
}

/// The ports the apps other than `name` publish.
pub(crate) fn taken_by_others<'a>(
    apps: impl IntoIterator<Item = &'a App>,
    name: &str,
) -> BTreeSet<u16> {
    (apps.into_iter())
        .filter(|a| a.name != name)
        .flat_map(|a| a.services.values())
        .flat_map(|s| &s.ports)
        .map(|p| p.published)
        .filter(|p| *p != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{app, service};
    use atoll_sdk::spec::PortMapping;

    fn shop(ports: &[(u16, u16)]) -> App {
        let mut web = service("web");
        web.ports = (ports.iter())
            .map(|&(published, target)| PortMapping { published, target })
            .collect();
        app("shop", vec![web, service("db")]).spec
    }

    fn published(a: &App) -> Vec<(u16, u16)> {
        (a.services["web"].ports.iter())
            .map(|p| (p.published, p.target))
            .collect()
    }

    #[test]
    fn a_port_without_one_gets_the_lowest_free_and_keeps_it() {
        let taken = BTreeSet::from([30000]);
        let mut a = shop(&[(0, 80), (30001, 81), (0, 443)]);
        assign(&mut a, None, &taken).unwrap();
        assert_eq!(published(&a), [(30002, 80), (30001, 81), (30003, 443)]);
        // Deployed again (another app took 30000-30010 meanwhile, but not
        // these): the same ports.
        let mut again = shop(&[(0, 80), (30001, 81), (0, 443)]);
        let taken = (30000..=30001).chain(30004..=30010).collect();
        assign(&mut again, Some(&a), &taken).unwrap();
        assert_eq!(published(&again), [(30002, 80), (30001, 81), (30003, 443)]);
        // One of them taken by another app: that one moves.
        let mut moved = shop(&[(0, 80)]);
        assign(&mut moved, Some(&a), &BTreeSet::from([30002])).unwrap();
        assert_eq!(published(&moved), [(30000, 80)]);
    }

    #[test]
    fn a_full_range_is_an_error_naming_the_service() {
        let taken: BTreeSet<u16> = RANGE.collect();
        let mut a = shop(&[(8080, 80), (0, 443)]);
        let e = assign(&mut a, None, &taken).unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web.ports: no free port left in 30000-32767 to publish target 443 on (give it one: \"PORT:443\")"
        );
        assert_eq!(
            taken_by_others([&a, &shop(&[(9, 9)])], "other"),
            BTreeSet::from([8080, 9])
        );
    }
}
