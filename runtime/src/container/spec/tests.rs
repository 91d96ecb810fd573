use super::*;
use atoll_sdk::spec::ContainerOptions;

fn image() -> ImageConfig {
    ImageConfig {
        entrypoint: vec!["/bin/httpd".into()],
        cmd: vec!["-f".into(), "-p".into(), "80".into()],
        env: vec!["PATH=/bin".into(), "MODE=image".into()],
        working_dir: Some("/www".into()),
        ..ImageConfig::default()
    }
}

fn input<'a>(
    img: &'a ImageConfig,
    options: &'a ContainerOptions,
    limits: &'a ResourceSpec,
    env: &'a [(String, String)],
    user: &'a ResolvedUser,
) -> SpecInput<'a> {
    SpecInput {
        hostname: "shop-web-abc123",
        image: img,
        options,
        limits,
        env,
        user,
        args: args(img, options).expect("args"),
        netns: Some("/var/run/netns/atoll-x".into()),
        userns: None,
        cgroups_path: "/atoll/x".into(),
        etc_files: None,
        nofile: 1024,
        volumes: vec![("/data/volumes/shop/db".into(), "/var/lib/db".into(), true)],
        init: None,
    }
}

#[test]
fn compose_command_and_entrypoint_follow_docker() {
    let img = image();
    let mut o = ContainerOptions::default();
    assert_eq!(args(&img, &o).unwrap(), ["/bin/httpd", "-f", "-p", "80"]);
    o.command = Some(vec!["-p".into(), "8080".into()]);
    assert_eq!(args(&img, &o).unwrap(), ["/bin/httpd", "-p", "8080"]);
    o.command = None;
    o.entrypoint = Some(vec!["/bin/sh".into()]);
    assert_eq!(
        args(&img, &o).unwrap(),
        ["/bin/sh"],
        "entrypoint drops the image's Cmd"
    );
    o.entrypoint = Some(vec![]);
    assert_eq!(args(&img, &o), Err(CommandError::Empty));
}

#[test]
fn env_layers_image_then_compose_and_keeps_path() {
    let img = image();
    let env = vec![("MODE".to_string(), "compose".to_string())];
    let out = environment(&img, &env);
    assert_eq!(out, ["PATH=/bin", "MODE=compose"]);
    let bare = ImageConfig::default();
    assert_eq!(environment(&bare, &[])[0], format!("PATH={DEFAULT_PATH}"));
}

#[test]
fn spec_carries_limits_namespaces_and_hardening() {
    let img = image();
    let options = ContainerOptions {
        read_only: true,
        no_new_privileges: true,
        cap_drop: vec!["NET_RAW".into()],
        ..Default::default()
    };
    let limits = ResourceSpec {
        memory: Some(64 << 20),
        cpus_milli: Some(500),
        pids: Some(100),
    };
    let user = ResolvedUser::default();
    let spec = build(&input(&img, &options, &limits, &[], &user)).expect("spec");
    let json = serde_json::to_value(&spec).expect("json");
    assert_eq!(json["root"]["readonly"], true);
    assert_eq!(json["process"]["noNewPrivileges"], true);
    assert_eq!(json["process"]["cwd"], "/www");
    assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 50_000);
    assert_eq!(
        json["linux"]["resources"]["cpu"]["shares"], 1024,
        "a CPU group of its own"
    );
    assert_eq!(json["linux"]["resources"]["pids"]["limit"], 100);
    let ns = json["linux"]["namespaces"].as_array().expect("namespaces");
    let net = ns.iter().find(|n| n["type"] == "network").expect("netns");
    assert_eq!(net["path"], "/var/run/netns/atoll-x");
    for t in ["pid", "ipc", "uts", "mount"] {
        assert!(ns.iter().any(|n| n["type"] == t), "{t} namespace");
    }
    let bounding = json["process"]["capabilities"]["bounding"].to_string();
    assert!(bounding.contains("CAP_CHOWN"));
    assert!(!bounding.contains("CAP_NET_RAW"), "dropped");
    assert!(
        !bounding.contains("CAP_SYS_ADMIN"),
        "not in the default set"
    );
    let volume = json["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["destination"] == "/var/lib/db")
        .expect("the volume is mounted");
    assert_eq!(volume["source"], "/data/volumes/shop/db");
    assert!(volume["options"].to_string().contains("\"ro\""));
    let masked = json["linux"]["maskedPaths"].to_string();
    assert!(masked.contains("/proc/kcore"));
    let seccomp = &json["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO", "an allow list");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
}

#[test]
fn the_default_filter_is_dockers_allow_list_without_namespaces_or_io_uring() {
    let caps = caps::effective(&[], &[]);
    assert!(!caps.contains("NET_RAW") && !caps.contains("MKNOD"));
    let ok = seccomp::allowed(&caps);
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "futex",
        "epoll_wait",
        "ptrace",
    ] {
        assert!(ok.contains(&name.to_string()), "{name} is allowed");
    }
    for name in [
        "mount",
        "unshare",
        "setns",
        "keyctl",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "kcmp",
        "bpf",
        "clone",
        "clone3",
        "socket",
        "init_module",
    ] {
        assert!(
            !ok.contains(&name.to_string()),
            "{name} is not allowed outright"
        );
    }
    let profile = seccomp::default_profile(&caps).expect("profile");
    let json = serde_json::to_value(&profile).expect("json");
    let rules = json["syscalls"].as_array().expect("rules");
    let of = |name: &str| -> Vec<&serde_json::Value> {
        rules
            .iter()
            .filter(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == name))
            })
            .collect()
    };
    // clone only with flags below CLONE_NEWUSER, read the same way by
    // every runtime (no masked comparison).
    let clone = of("clone");
    assert_eq!(clone.len(), 1, "{clone:?}");
    assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_LT");
    assert_eq!(clone[0]["args"][0]["value"], 0x1000_0000u64);
    // clone3 answers ENOSYS, so C libraries fall back to clone.
    let clone3 = of("clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
    assert_eq!(clone3[0]["errnoRet"], 38);
    // Sockets by family: AF_INET (2) yes, AF_ALG (38) and AF_VSOCK (40) no.
    let families: Vec<u64> = of("socket")
        .iter()
        .filter_map(|r| {
            let a = &r["args"][0];
            (a["op"] == "SCMP_CMP_EQ")
                .then(|| a["value"].as_u64())
                .flatten()
        })
        .collect();
    assert!(!families.contains(&38) && !families.contains(&40));
    assert!(
        of("socket")
            .iter()
            .any(|r| r["args"][0]["op"] == "SCMP_CMP_LT")
    );
    let arches = json["architectures"].to_string();
    if cfg!(target_arch = "x86_64") {
        assert!(arches.contains("SCMP_ARCH_X86_64") && arches.contains("SCMP_ARCH_X86\""));
    }
}

#[test]
fn cap_add_all_and_sys_admin_unblock_mount() {
    let caps = caps::effective(&["sys_admin".into()], &[]);
    assert!(caps.contains("SYS_ADMIN"));
    let ok = seccomp::allowed(&caps);
    for name in ["mount", "unshare", "setns", "clone", "clone3"] {
        assert!(ok.contains(&name.to_string()), "{name} with SYS_ADMIN");
    }
    let raw = caps::effective(&["NET_RAW".into()], &[]);
    assert!(raw.contains("NET_RAW"), "asking for NET_RAW gives it back");
    let all = caps::effective(&["ALL".into()], &["CAP_KILL".into()]);
    assert!(all.contains("NET_ADMIN") && !all.contains("KILL"));
    assert!(caps::effective(&[], &["ALL".into()]).is_empty());
}

#[test]
fn non_root_users_keep_only_the_bounding_set() {
    let set = caps::effective(&[], &[]);
    let linux = caps::to_linux(&set, false);
    assert!(linux.effective().as_ref().is_some_and(|c| c.is_empty()));
    assert!(linux.bounding().as_ref().is_some_and(|c| !c.is_empty()));
}

#[test]
fn users_resolve_from_the_images_files() {
    let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n";
    let group = "root:x:0:\nwww:x:33:\nlogs:x:50:www\n";
    let u = user::resolve_in(passwd, group, "www").unwrap();
    assert_eq!((u.uid, u.gid, u.additional_gids), (33, 33, vec![50]));
    let u = user::resolve_in(passwd, group, "1000:logs").unwrap();
    assert_eq!((u.uid, u.gid), (1000, 50));
    assert!(user::resolve_in(passwd, group, "nobody").is_err());
    assert!(user::resolve_in(passwd, group, "www:nogroup").is_err());
}

#[test]
fn executables_resolve_through_symlinks_inside_the_root() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = std::env::temp_dir().join(format!("atoll-cmd-{}", std::process::id()));
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/busybox"), b"#!").unwrap();
    std::fs::set_permissions(
        root.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    symlink("/bin/busybox", root.join("bin/httpd")).unwrap();
    std::fs::write(root.join("bin/data"), b"x").unwrap();
    // A link pointing out of the root resolves inside it, where nothing is.
    symlink("../../../../../../usr/bin/env", root.join("bin/escape")).unwrap();
    let found = find_executable(&root, "httpd", "/usr/bin:/bin", "/").unwrap();
    assert_eq!(found, root.join("bin/busybox"));
    assert!(matches!(
        find_executable(&root, "nginx", "/usr/bin:/bin", "/"),
        Err(CommandError::NotFound { .. })
    ));
    assert!(matches!(
        find_executable(&root, "/bin/data", "", "/"),
        Err(CommandError::NotExecutable { .. })
    ));
    assert!(find_executable(&root, "escape", "/bin", "/").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn init_tmpfs_shm_ulimits_and_sysctls_reach_the_spec() {
    let img = image();
    let options = ContainerOptions {
        shm_size: Some(256 << 20),
        tmpfs: vec![atoll_sdk::spec::TmpfsMount {
            target: "/run".into(),
            size: Some(1 << 20),
            mode: Some(0o755),
            flags: vec!["noexec".into()],
        }],
        ulimits: vec![atoll_sdk::spec::Ulimit {
            name: "nproc".into(),
            soft: 100,
            hard: 200,
        }],
        sysctls: [("net.core.somaxconn".to_string(), "1024".to_string())].into(),
        ..Default::default()
    };
    let (limits, user) = (ResourceSpec::default(), ResolvedUser::default());
    let mut inp = input(&img, &options, &limits, &[], &user);
    inp.init = Some("/usr/bin/tini-static".into());
    let json = serde_json::to_value(build(&inp).expect("spec")).expect("json");
    let args = json["process"]["args"].as_array().expect("args");
    assert_eq!(
        args[..3],
        ["/sbin/docker-init", "--", "/bin/httpd"],
        "the init runs the command"
    );
    let mounts = json["mounts"].as_array().expect("mounts");
    let at = |dest: &str| mounts.iter().find(|m| m["destination"] == dest).cloned();
    let init = at("/sbin/docker-init").expect("the init is mounted");
    assert_eq!(init["source"], "/usr/bin/tini-static");
    let run = at("/run").expect("tmpfs");
    assert_eq!(run["type"], "tmpfs");
    assert_eq!(
        run["options"],
        serde_json::json!(["nosuid", "nodev", "noexec", "mode=755", "size=1024k"])
    );
    let shm = at("/dev/shm").expect("shm").to_string();
    assert!(shm.contains("size=262144k"), "{shm}");
    let rlimits = json["process"]["rlimits"].to_string();
    assert!(
        rlimits.contains("RLIMIT_NOFILE") && rlimits.contains("RLIMIT_NPROC"),
        "{rlimits}"
    );
    assert_eq!(json["linux"]["sysctl"]["net.core.somaxconn"], "1024");
    assert_eq!(
        json["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
        "0"
    );

    let plain = serde_json::to_value(
        build(&input(
            &img,
            &ContainerOptions::default(),
            &limits,
            &[],
            &user,
        ))
        .expect("spec"),
    )
    .expect("json");
    let shm = plain["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .expect("shm")
        .to_string();
    assert!(shm.contains("size=65536k"), "64 MiB by default: {shm}");
    assert_eq!(
        plain["process"]["args"][0], "/bin/httpd",
        "no init unless asked"
    );
}

#[test]
fn containers_get_default_pids_and_memory_limits_unless_the_service_sets_them() {
    let none = ResourceSpec::default();
    let d = effective_limits(&none, &none);
    assert_eq!(
        (d.pids, d.memory),
        (Some(DEFAULT_PIDS), Some(DEFAULT_MEMORY))
    );
    let set = ResourceSpec {
        memory: Some(64 << 20),
        cpus_milli: Some(250),
        pids: Some(50),
    };
    assert_eq!(effective_limits(&set, &none), set);
    // A service reserving more than the default is not capped below it.
    let big = ResourceSpec {
        memory: Some(3 << 30),
        ..Default::default()
    };
    assert_eq!(effective_limits(&none, &big).memory, Some(3 << 30));
}
