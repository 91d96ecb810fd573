//! The OCI runtime spec (`config.json`) of one container, built from its
//! image config and its service's Compose options.
//!
//! Pure: everything it needs (the image config, the resolved user, the
//! network namespace path) comes in as plain data, so the security-relevant
//! defaults are checked by unit tests. The defaults are Docker's, made
//! stricter where Kubernetes' "restricted" profile is: Docker's
//! capability set without `NET_RAW` and `MKNOD`, runc's masked and
//! read-only paths, Docker's seccomp allow list (namespaces, `clone3` and
//! `io_uring` refused), a device cgroup that denies everything but the
//! standard devices, and default pids and memory limits.

mod caps;
mod command;
mod seccomp;
#[cfg(test)]
mod tests;
pub mod user;

use std::path::{Path, PathBuf};

use atoll_sdk::spec::{ContainerOptions, ResourceSpec, TmpfsMount};
use oci_spec::OciSpecError;
use oci_spec::runtime::{
    LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder, get_default_maskedpaths, get_default_mounts,
    get_default_readonly_paths,
};

use crate::oci::kind::ImageConfig;
pub use command::{CommandError, args, find_executable};
pub use user::ResolvedUser;

/// [`NOFILE`], or this process's hard limit if lower.
pub fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return 1024;
    }
    NOFILE.min(lim.rlim_max)
}

/// Processes per container unless `deploy.resources.limits.pids` says
/// otherwise: a fork bomb stops here instead of at the host's limit.
pub const DEFAULT_PIDS: u32 = 4096;
/// Memory per container unless `deploy.resources.limits.memory` says
/// otherwise (or its memory reservation is larger): one leaking container
/// is killed alone instead of pushing the host into its OOM killer.
pub const DEFAULT_MEMORY: u64 = 1 << 30;

/// The limits a container runs with: the service's, else the defaults.
pub fn effective_limits(limits: &ResourceSpec, reservations: &ResourceSpec) -> ResourceSpec {
    let reserved = reservations.memory.unwrap_or(0);
    ResourceSpec {
        memory: Some(limits.memory.unwrap_or(DEFAULT_MEMORY.max(reserved))),
        cpus_milli: limits.cpus_milli,
        pids: Some(limits.pids.unwrap_or(DEFAULT_PIDS)),
    }
}

/// The kernel's default CPU weight (cgroup v1 `cpu.shares`; v2 weight 100).
const DEFAULT_CPU_SHARES: u64 = 1024;
/// CFS period used to express `cpus` limits as a quota.
const CPU_PERIOD_US: u64 = 100_000;
/// Open files per container process, unless the host's own hard limit is
/// lower (a runtime cannot raise it past that).
pub const NOFILE: u64 = 65_536;
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything one container's spec is made from.
pub struct SpecInput<'a> {
    /// Container hostname (the instance id).
    pub hostname: &'a str,
    pub image: &'a ImageConfig,
    pub options: &'a ContainerOptions,
    pub limits: &'a ResourceSpec,
    /// Compose `environment` and atoll's `ATOLL_*`, applied over the image's.
    pub env: &'a [(String, String)],
    pub user: &'a ResolvedUser,
    /// The process arguments (see [`args`]).
    pub args: Vec<String>,
    /// The network namespace to join; `None` gives the container an
    /// unconnected namespace of its own.
    pub netns: Option<PathBuf>,
    /// A pinned user namespace to join (it owns `netns`); `None`: the
    /// host's.
    pub userns: Option<PathBuf>,
    /// `cgroupsPath`, e.g. `/atoll/<instance>`.
    pub cgroups_path: String,
    /// Files bind-mounted over `/etc/hosts`, `/etc/resolv.conf` and
    /// `/etc/hostname`.
    pub etc_files: Option<EtcFiles>,
    /// `RLIMIT_NOFILE` for the process.
    pub nofile: u64,
    /// Volumes: a host directory, where it goes, read-only or not.
    pub volumes: Vec<(PathBuf, String, bool)>,
    /// `init: true`: the host's init binary, mounted at [`INIT_PATH`] and
    /// run as PID 1 before the command.
    pub init: Option<PathBuf>,
}

/// Where the init binary is mounted (Docker's path for its `--init`).
pub const INIT_PATH: &str = "/sbin/docker-init";
/// `/dev/shm` without `shm_size`, as Docker.
const DEFAULT_SHM: u64 = 64 << 20;

/// Host-side files for the container's name resolution.
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

/// Builds the runtime spec. The root filesystem is `rootfs` beside the
/// bundle's `config.json`.
pub fn build(input: &SpecInput) -> Result<Spec, OciSpecError> {
    let caps = caps::effective(&input.options.cap_add, &input.options.cap_drop);
    // With `init`, the init is PID 1 and runs the command as its child.
    let args: Vec<String> = match &input.init {
        Some(_) => [INIT_PATH, "--"]
            .map(String::from)
            .into_iter()
            .chain(input.args.iter().cloned())
            .collect(),
        None => input.args.clone(),
    };
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(args)
        .env(environment(input.image, input.env))
        .cwd(working_dir(input.image, input.options))
        .user(
            UserBuilder::default()
                .uid(input.user.uid)
                .gid(input.user.gid)
                .additional_gids(input.user.additional_gids.clone())
                .build()?,
        )
        // Always on: youki installs the seccomp filter after dropping
        // capabilities, which the kernel only allows with no_new_privs (and
        // it is the safer default: setuid binaries gain nothing).
        .no_new_privileges(true)
        .capabilities(caps::to_linux(&caps, input.user.uid == 0))
        .rlimits(rlimits(input)?)
        .build()?;
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(input.options.read_only)
        .build()?;
    SpecBuilder::default()
        .version("1.0.2")
        .hostname(truncate_hostname(input.hostname))
        .process(process)
        .root(root)
        .mounts(mounts(input)?)
        .linux(linux(input, &caps)?)
        .build()
}

/// The image's env, then Compose's and atoll's (same key: the later wins),
/// with a default `PATH` when the image sets none.
fn environment(image: &ImageConfig, extra: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match out.iter_mut().find(|(key, _)| key == k) {
        Some(entry) => entry.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    for (k, v) in extra {
        set(k, v);
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `ulimits:`, with `nofile` at [`SpecInput::nofile`] unless it is given.
fn rlimits(input: &SpecInput) -> Result<Vec<oci_spec::runtime::PosixRlimit>, OciSpecError> {
    let mut limits = Vec::new();
    let given = &input.options.ulimits;
    if !given.iter().any(|u| u.name == "nofile") {
        limits.push((PosixRlimitType::RlimitNofile, input.nofile, input.nofile));
    }
    for u in given {
        // The names were checked when the file was parsed.
        if let Some(typ) = rlimit_type(&u.name) {
            limits.push((typ, u.soft, u.hard));
        }
    }
    limits
        .into_iter()
        .map(|(typ, soft, hard)| {
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
        })
        .collect()
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "as" => RlimitAs,
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        _ => return None,
    })
}

fn working_dir(image: &ImageConfig, options: &ContainerOptions) -> PathBuf {
    let dir = options.working_dir.as_ref().or(image.working_dir.as_ref());
    PathBuf::from(dir.map_or("/", String::as_str))
}

fn truncate_hostname(name: &str) -> String {
    name.chars().take(63).collect()
}

fn mounts(input: &SpecInput) -> Result<Vec<oci_spec::runtime::Mount>, OciSpecError> {
    let mut mounts = get_default_mounts();
    let shm = input.options.shm_size.unwrap_or(DEFAULT_SHM);
    for m in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
    {
        let options = ["nosuid", "noexec", "nodev", "mode=1777"].map(String::from);
        let size = format!("size={}k", shm.div_ceil(1024));
        m.set_options(Some(options.into_iter().chain([size]).collect()));
    }
    if let Some(etc) = &input.etc_files {
        let ro = if input.options.read_only { "ro" } else { "rw" };
        for (dest, src) in [
            ("/etc/hosts", &etc.hosts),
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
        ] {
            mounts.push(
                MountBuilder::default()
                    .destination(dest)
                    .typ("bind")
                    .source(src)
                    .options(vec!["rbind".into(), "rprivate".into(), ro.into()])
                    .build()?,
            );
        }
    }
    for (source, target, read_only) in &input.volumes {
        let mode = if *read_only { "ro" } else { "rw" };
        mounts.push(
            MountBuilder::default()
                .destination(target)
                .typ("bind")
                .source(source)
                .options(vec!["rbind".into(), "rprivate".into(), mode.into()])
                .build()?,
        );
    }
    for t in &input.options.tmpfs {
        mounts.push(tmpfs_mount(t)?);
    }
    if let Some(init) = &input.init {
        mounts.push(
            MountBuilder::default()
                .destination(INIT_PATH)
                .typ("bind")
                .source(init)
                .options(vec!["bind".into(), "ro".into(), "nosuid".into()])
                .build()?,
        );
    }
    Ok(mounts)
}

/// A `tmpfs` mount: `nosuid,nodev` as Docker, mode 1777 unless given.
fn tmpfs_mount(t: &TmpfsMount) -> Result<oci_spec::runtime::Mount, OciSpecError> {
    let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into()];
    options.extend(t.flags.iter().cloned());
    options.push(format!("mode={:o}", t.mode.unwrap_or(0o1777)));
    if let Some(size) = t.size {
        options.push(format!("size={}k", size.div_ceil(1024)));
    }
    MountBuilder::default()
        .destination(&t.target)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options)
        .build()
}

fn linux(input: &SpecInput, caps: &caps::CapSet) -> Result<oci_spec::runtime::Linux, OciSpecError> {
    // Joined by path, with its mapping already written: youki writes
    // none for a user namespace it joins.
    let user = (input.userns.as_ref()).map(|path| {
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .path(path.clone())
            .build()
    });
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .map(|typ| {
        let ns = LinuxNamespaceBuilder::default().typ(typ);
        match (&input.netns, typ) {
            (Some(path), LinuxNamespaceType::Network) => ns.path(path.clone()).build(),
            _ => ns.build(),
        }
    })
    .chain(user)
    .collect::<Result<Vec<_>, _>>()?;
    let mut sysctl = std::collections::HashMap::new();
    // As Docker does: a non-root process may listen on port 80 inside its
    // own network namespace.
    sysctl.insert(
        "net.ipv4.ip_unprivileged_port_start".to_string(),
        "0".to_string(),
    );
    // `sysctls:`: namespaced ones only (checked when the file was parsed).
    sysctl.extend(input.options.sysctls.clone());
    LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(input.limits)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(seccomp::default_profile(caps)?)
        .sysctl(sysctl)
        .build()
}

fn resources(limits: &ResourceSpec) -> Result<oci_spec::runtime::LinuxResources, OciSpecError> {
    // Deny every device; the runtime adds the standard ones (null, zero,
    // full, random, urandom, tty, ptmx, pts) that every container gets.
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let mut r = LinuxResourcesBuilder::default().devices(vec![deny_all]);
    if let Some(bytes) = limits.memory {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        // Swap equal to the limit: no swap beyond memory, so the limit holds.
        r = r.memory(
            LinuxMemoryBuilder::default()
                .limit(bytes)
                .swap(bytes)
                .build()?,
        );
    }
    // Always a CPU group of its own at the default weight: without one the
    // runtime leaves the processes in the host's CPU group, where each of
    // them weighs as much as the host agent (a fork bomb held at its pids
    // limit then starves the host and every other container).
    let mut cpu = LinuxCpuBuilder::default().shares(DEFAULT_CPU_SHARES);
    if let Some(milli) = limits.cpus_milli {
        let quota = (u64::from(milli) * CPU_PERIOD_US / 1000).max(1000);
        cpu = cpu
            .quota(i64::try_from(quota).unwrap_or(i64::MAX))
            .period(CPU_PERIOD_US);
    }
    r = r.cpu(cpu.build()?);
    if let Some(pids) = limits.pids {
        r = r.pids(LinuxPidsBuilder::default().limit(i64::from(pids)).build()?);
    }
    r.build()
}
