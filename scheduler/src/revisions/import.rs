//! What an import does to one app, given its current revision in the
//! cluster: a plain function; [`super::import`] writes what it decides.

use atoll_sdk::export::ExportedApp;
use atoll_sdk::protocol::AppRecord;

/// An import's decision for one app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Revisions to write, in this order; the last is the file's current
    /// one, those before it are marked as an import still being written.
    Write(Vec<AppRecord>),
    /// Left alone: the cluster has it as the file does.
    Skip(String),
    /// The cluster's app is newer, or another at the same number: not
    /// overwritten without `--force`.
    Refuse(String),
}

/// The revisions of `file` to write over the cluster's current revision
/// `now` of the app: all of them for an app the cluster lacks (or with
/// `force`), those after `now` when the file is ahead; nothing when the
/// cluster has the file's current revision already; a refusal when the
/// cluster is ahead or differs at the same number. `at_ms` marks the
/// revisions written on the way ([`AppRecord::importing_since_ms`]).
pub(crate) fn decide(
    file: &ExportedApp,
    now: Option<&AppRecord>,
    force: bool,
    at_ms: u64,
) -> Decision {
    let Some(wanted) = file.current_record() else {
        // `parse` refuses such a file; said here rather than assumed.
        return Decision::Refuse(format!(
            "the file has no revision {} (its current one)",
            file.current
        ));
    };
    let name = &file.name;
    let after = match now {
        Some(now) if same(now, wanted) => {
            return Decision::Skip(format!("already at revision {}", now.revision));
        }
        Some(now) if !force && now.revision > wanted.revision => {
            return Decision::Refuse(format!(
                "app {name}: the cluster has revision {}, newer than the file's revision {} (--force overwrites it)",
                now.revision, wanted.revision
            ));
        }
        Some(now) if !force && now.revision == wanted.revision => {
            return Decision::Refuse(format!(
                "app {name}: the cluster's revision {} differs from the file's revision {} (--force overwrites it)",
                now.revision, wanted.revision
            ));
        }
        Some(now) if !force => now.revision,
        _ => 0,
    };
    let mut records: Vec<AppRecord> = (file.revisions.iter())
        .filter(|r| r.revision > after && r.revision != wanted.revision)
        .cloned()
        .collect();
    records.sort_by_key(|r| r.revision);
    for r in &mut records {
        r.importing_since_ms = Some(at_ms);
    }
    let mut last = wanted.clone();
    last.importing_since_ms = None;
    records.push(last);
    Decision::Write(records)
}

/// The same revision: number, spec and Compose text.
fn same(a: &AppRecord, b: &AppRecord) -> bool {
    a.revision == b.revision && a.spec == b.spec && a.compose == b.compose
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{ServiceExt, app, service};

    fn revision(n: u64) -> AppRecord {
        let mut r = app("shop", vec![service("api").env("V", &n.to_string())]);
        r.revision = n;
        r
    }

    fn file(current: u64, revisions: &[u64]) -> ExportedApp {
        ExportedApp {
            name: "shop".into(),
            current,
            revisions: revisions.iter().map(|&n| revision(n)).collect(),
        }
    }

    fn written(d: Decision) -> Vec<(u64, bool)> {
        match d {
            Decision::Write(records) => (records.iter())
                .map(|r| (r.revision, r.importing_since_ms.is_some()))
                .collect(),
            other => panic!("not a write: {other:?}"),
        }
    }

    #[test]
    fn an_app_the_cluster_lacks_gets_every_revision_the_current_last() {
        let d = decide(&file(2, &[1, 2, 3]), None, false, 7);
        assert_eq!(
            written(d),
            [(1, true), (3, true), (2, false)],
            "only the last one is acted on"
        );
    }

    #[test]
    fn a_cluster_behind_gets_the_revisions_after_its_own() {
        let now = revision(2);
        let d = decide(&file(4, &[1, 2, 3, 4]), Some(&now), false, 7);
        assert_eq!(written(d), [(3, true), (4, false)]);
    }

    #[test]
    fn the_same_current_revision_is_skipped() {
        let now = revision(2);
        let d = decide(&file(2, &[1, 2]), Some(&now), true, 7);
        assert_eq!(d, Decision::Skip("already at revision 2".into()));
    }

    #[test]
    fn a_newer_or_different_cluster_revision_is_refused_unless_forced() {
        let now = revision(3);
        let d = decide(&file(2, &[1, 2]), Some(&now), false, 7);
        assert_eq!(
            d,
            Decision::Refuse(
                "app shop: the cluster has revision 3, newer than the file's revision 2 (--force overwrites it)"
                    .into()
            )
        );
        let mut other = revision(2);
        other.compose = "another file".into();
        let d = decide(&file(2, &[1, 2]), Some(&other), false, 7);
        assert_eq!(
            d,
            Decision::Refuse(
                "app shop: the cluster's revision 2 differs from the file's revision 2 (--force overwrites it)"
                    .into()
            )
        );
        let forced = decide(&file(2, &[1, 2]), Some(&now), true, 7);
        assert_eq!(written(forced), [(1, true), (2, false)]);
    }
}
