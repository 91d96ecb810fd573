//! What a container keeps of its image beside its bundle (`facts.json`):
//! the signal that stops it and the image's own health check. Written
//! when the bundle is made, read by every later run — a restart, or a
//! host that adopts the container after it restarted itself.
//!
//! The image's `HEALTHCHECK` follows Docker: `CMD` runs as given,
//! `CMD-SHELL` through `/bin/sh -c`, `NONE` is no check; a zero duration
//! or retry count means Docker's default (30 s, 30 s, 3, no start period).

use std::path::Path;

use atoll_sdk::spec::{Check, Health, Probe, signal_name};
use serde::{Deserialize, Serialize};

use crate::oci::kind::{ImageConfig, ImageHealthcheck};

const FILE: &str = "facts.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Facts {
    /// Without `SIG` (`TERM`, `QUIT`).
    pub stop_signal: String,
    /// The image's check, when the service has none of its own and does
    /// not turn it off.
    pub health: Option<Health>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            stop_signal: "TERM".into(),
            health: None,
        }
    }
}

impl Facts {
    /// The facts of a container of a service with `options` from `image`:
    /// Compose's `stop_signal` over the image's, Compose's health check
    /// (kept elsewhere) over the image's.
    pub(crate) fn of(
        image: &ImageConfig,
        options: &atoll_sdk::spec::ContainerOptions,
        has_own_check: bool,
    ) -> Facts {
        let stop_signal = (options.stop_signal.clone())
            .or_else(|| image.stop_signal.as_deref().and_then(signal_name))
            .unwrap_or_else(|| "TERM".into());
        let health = match (
            has_own_check || options.no_image_healthcheck,
            &image.healthcheck,
        ) {
            (false, Some(h)) => health(h),
            _ => None,
        };
        Facts {
            stop_signal,
            health,
        }
    }

    pub(crate) fn write(&self, bundle: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(bundle.join(FILE), json)
    }

    /// The facts of a bundle; the defaults for one made before they were
    /// kept.
    pub(crate) fn read(bundle: &Path) -> Facts {
        std::fs::read(bundle.join(FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Docker's reading of an image's `Healthcheck`.
fn health(h: &ImageHealthcheck) -> Option<Health> {
    let argv = match h.test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, [command])) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), command.clone()]
        }
        _ => return None,
    };
    let ms = |ns: u64, default_ms: u64| {
        if ns == 0 {
            default_ms
        } else {
            ns.div_ceil(1_000_000)
        }
    };
    let check = Check {
        probe: Probe::Command { argv },
        interval_ms: ms(h.interval, 30_000),
        timeout_ms: ms(h.timeout, 30_000),
        retries: if h.retries == 0 { 3 } else { h.retries },
        start_period_ms: ms(h.start_period, 0),
    };
    Some(Health {
        ready: check.clone(),
        live: Some(check),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::spec::ContainerOptions;

    fn image(test: &[&str], interval_ns: u64, retries: u32) -> ImageConfig {
        ImageConfig {
            stop_signal: Some("SIGQUIT".into()),
            healthcheck: Some(ImageHealthcheck {
                test: test.iter().map(|s| s.to_string()).collect(),
                interval: interval_ns,
                retries,
                ..ImageHealthcheck::default()
            }),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn the_images_check_and_signal_unless_the_service_says_otherwise() {
        let img = image(&["CMD-SHELL", "redis-cli ping"], 1_000_000_000, 0);
        let f = Facts::of(&img, &ContainerOptions::default(), false);
        assert_eq!(f.stop_signal, "QUIT");
        let ready = f.health.expect("the image's check").ready;
        assert_eq!(
            ready.probe,
            Probe::Command {
                argv: vec!["/bin/sh".into(), "-c".into(), "redis-cli ping".into()]
            }
        );
        assert_eq!(
            (ready.interval_ms, ready.timeout_ms, ready.retries),
            (1_000, 30_000, 3)
        );

        let mut o = ContainerOptions {
            stop_signal: Some("INT".into()),
            ..ContainerOptions::default()
        };
        assert_eq!(Facts::of(&img, &o, false).stop_signal, "INT");
        assert!(
            Facts::of(&img, &o, true).health.is_none(),
            "the service's own check wins"
        );
        o.no_image_healthcheck = true;
        assert!(Facts::of(&img, &o, false).health.is_none(), "disabled");
    }

    #[test]
    fn none_and_malformed_checks_are_no_check() {
        for test in [
            &["NONE"][..],
            &["CMD"],
            &["CMD-SHELL"],
            &["CMD-SHELL", "a", "b"],
            &["SHELL", "x"],
        ] {
            let f = Facts::of(&image(test, 0, 0), &ContainerOptions::default(), false);
            assert!(f.health.is_none(), "{test:?}");
        }
        let f = Facts::of(
            &image(&["CMD", "true"], 0, 5),
            &ContainerOptions::default(),
            false,
        );
        let ready = f.health.expect("check").ready;
        assert_eq!((ready.interval_ms, ready.retries), (30_000, 5));
        assert_eq!(
            Facts::of(&ImageConfig::default(), &ContainerOptions::default(), false).stop_signal,
            "TERM"
        );
    }

    #[test]
    fn facts_round_trip_and_default_when_missing() {
        let dir = std::env::temp_dir().join(format!("atoll-facts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(Facts::read(&dir), Facts::default());
        let f = Facts::of(
            &image(&["CMD", "true"], 0, 0),
            &ContainerOptions::default(),
            false,
        );
        f.write(&dir).expect("write");
        assert_eq!(Facts::read(&dir), f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
