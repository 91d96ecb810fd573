//! What the fuzz targets share: the checks every Compose parse must pass.

use atoll_sdk::spec::{App, Parsed, SpecErrors, parse};

/// Parses `text` and checks what holds for any input: the same answer
/// twice; errors non-empty and sorted by line; an app that is valid by its
/// own rules and reads back equal from its JSON form.
pub fn check_compose(text: &str) -> Result<Parsed, SpecErrors> {
    let first = parse(text, "fuzz");
    let again = parse(text, "fuzz");
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.app, b.app, "two parses of one text differ"),
        (Err(a), Err(b)) => assert_eq!(a.0, b.0, "two parses of one text differ"),
        _ => panic!("one parse succeeded and one failed"),
    }
    match &first {
        Ok(parsed) => check_app(&parsed.app),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without errors");
            let lines: Vec<usize> = errors.0.iter().map(|e| e.line).collect();
            assert!(lines.is_sorted(), "errors not sorted by line: {lines:?}");
        }
    }
    first
}

fn check_app(app: &App) {
    assert!(
        atoll_sdk::spec::is_app_name(&app.name),
        "app name {:?}",
        app.name
    );
    assert!(!app.services.is_empty(), "an app without services");
    for (name, service) in &app.services {
        assert_eq!(name, &service.name, "a service under another name");
    }
    let json = serde_json::to_vec(app).expect("an app serializes");
    let back: App = serde_json::from_slice(&json).expect("an app reads back");
    assert_eq!(&back, app, "an app's JSON form reads back different");
}

pub mod yaml_doc;

/// Decodes `data` as a `T` as the receiver of a message would, and when
/// that works, checks that what it re-encodes to decodes to the same
/// value and re-encodes to the same bytes (nothing lost or invented on the
/// way through a host or a server).
pub fn check_round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let once = serde_json::to_vec(&value).expect("a decoded message encodes");
    let again: T = serde_json::from_slice(&once)
        .unwrap_or_else(|e| panic!("{value:?} encodes to what does not decode: {e}"));
    let twice = serde_json::to_vec(&again).expect("encodes");
    assert_eq!(
        String::from_utf8_lossy(&once),
        String::from_utf8_lossy(&twice),
        "a message changed on its way through"
    );
}

/// `check_round_trip`, and equality of the values where the type has it.
pub fn check_round_trip_eq<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug + PartialEq,
{
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let once = serde_json::to_vec(&value).expect("a decoded message encodes");
    let again: T = serde_json::from_slice(&once)
        .unwrap_or_else(|e| panic!("{value:?} encodes to what does not decode: {e}"));
    assert_eq!(value, again, "a message changed on its way through");
}

pub mod archive;

/// A scratch directory, made once per process and kept: the targets that
/// write files work there. Under `$ATOLL_FUZZ_SCRATCH` (scripts/fuzz
/// makes one and removes it after the run), else in memory (`/dev/shm`
/// where there is one).
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    let base = match std::env::var_os("ATOLL_FUZZ_SCRATCH") {
        Some(dir) => std::path::PathBuf::from(dir),
        None if std::path::Path::new("/dev/shm").is_dir() => "/dev/shm".into(),
        None => "/tmp".into(),
    };
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .expect("a scratch dir")
        .keep()
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
