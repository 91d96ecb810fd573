//! The keys that set what the kernel gives a container: `init`,
//! `stop_signal`, `shm_size`, `ulimits`, `sysctls`, `tmpfs`, and
//! `healthcheck: {disable: true}` turning the image's check off.

use super::super::*;
use super::{ok, one_error, web};

fn opts(body: &str) -> ContainerOptions {
    let parsed = ok(&web(body));
    assert_eq!(parsed.warnings, Vec::<String>::new());
    parsed.app.services["web"].container.clone()
}

#[test]
fn init_and_stop_signal() {
    let o = opts("init: true\nstop_signal: SIGQUIT");
    assert!(o.init);
    assert_eq!(o.stop_signal.as_deref(), Some("QUIT"));
    assert_eq!(opts("stop_signal: 2").stop_signal.as_deref(), Some("INT"));
    let e = one_error(&web("stop_signal: SIGWHAT"), "services.web.stop_signal", 4);
    assert!(e.message.starts_with("unknown signal \"SIGWHAT\""), "{e}");
    let e = one_error(&web("init: maybe"), "services.web.init", 4);
    assert_eq!(e.message, "expected true or false, found \"maybe\"");
}

#[test]
fn shm_size_and_ulimits() {
    let o = opts(
        "shm_size: 256m\nulimits:\n  nproc: 65535\n  nofile:\n    soft: 20000\n    hard: 40000",
    );
    assert_eq!(o.shm_size, Some(256 << 20));
    assert_eq!(
        o.ulimits,
        [
            Ulimit {
                name: "nproc".into(),
                soft: 65535,
                hard: 65535
            },
            Ulimit {
                name: "nofile".into(),
                soft: 20000,
                hard: 40000
            },
        ]
    );
    let e = one_error(
        &web("ulimits:\n  nofiles: 10"),
        "services.web.ulimits.nofiles",
        5,
    );
    assert!(e.message.starts_with("unknown ulimit \"nofiles\""), "{e}");
    let e = one_error(
        &web("ulimits:\n  nofile: {soft: 9, hard: 8}"),
        "services.web.ulimits.nofile",
        5,
    );
    assert_eq!(e.message, "soft limit 9 is above the hard limit 8");
    one_error(&web("shm_size: big"), "services.web.shm_size", 4);
}

#[test]
fn namespaced_sysctls_only() {
    let o = opts("sysctls:\n  net.core.somaxconn: 1024\n  kernel.shmmax: 68719476736");
    assert_eq!(o.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(o.sysctls["kernel.shmmax"], "68719476736");
    let o = opts("sysctls: [net.ipv4.tcp_syncookies=0]");
    assert_eq!(o.sysctls["net.ipv4.tcp_syncookies"], "0");
    let e = one_error(
        &web("sysctls:\n  kernel.pid_max: 100"),
        "services.web.sysctls.kernel.pid_max",
        5,
    );
    assert!(
        e.message
            .starts_with("sysctl kernel.pid_max is not namespaced"),
        "{e}"
    );
}

#[test]
fn tmpfs_forms() {
    let t = |target: &str, size: Option<u64>| TmpfsMount {
        target: target.into(),
        size,
        mode: None,
        flags: vec![],
    };
    assert_eq!(opts("tmpfs: /run").tmpfs, [t("/run", None)]);
    assert_eq!(
        opts("tmpfs: [/run, \"/tmp:size=1m\"]").tmpfs,
        [t("/run", None), t("/tmp", Some(1 << 20))]
    );
    let e = one_error(&web("tmpfs: [run]"), "services.web.tmpfs[0]", 4);
    assert!(e.message.contains("absolute path"), "{e}");
}

#[test]
fn a_disabled_healthcheck_turns_the_images_off_too() {
    assert!(opts("healthcheck: {disable: true}").no_image_healthcheck);
    assert!(opts("healthcheck: {test: [NONE]}").no_image_healthcheck);
    assert!(!opts("").no_image_healthcheck);
}

#[test]
fn new_keys_leave_the_spec_of_services_without_them_as_it_was() {
    // Unset options are not serialized: a host of this version computes
    // the same spec hash for an existing service, and restarts nothing.
    let json = serde_json::to_value(ContainerOptions::default()).expect("json");
    for key in [
        "init",
        "stop_signal",
        "shm_size",
        "ulimits",
        "sysctls",
        "tmpfs",
        "no_image_healthcheck",
    ] {
        assert!(json.get(key).is_none(), "{key} in {json}");
    }
}
