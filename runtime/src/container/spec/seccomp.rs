//! The default seccomp filter: Docker's default profile (vendored verbatim
//! in `seccomp/docker-default.json`, see `seccomp/SOURCE`), an allow list
//! whose default answer is `EPERM`, filtered for the container's
//! capabilities and this machine's architecture exactly as Docker does
//! (`setupSeccomp` in moby/profiles): a rule with `includes.caps` is kept
//! only when the container holds every one of them, a rule with
//! `excludes.caps` is dropped when it holds any.
//!
//! One change to Docker's rules: Docker allows `clone` when
//! `flags & <namespace flags> == 0` (`SCMP_CMP_MASKED_EQ`), but runtimes
//! disagree on which of `value`/`valueTwo` is the mask (youki 0.7 reads
//! them the other way round from runc and crun, which makes the rule
//! always true). atoll writes `flags < CLONE_NEWUSER` instead, which means
//! the same under every reading: it refuses `CLONE_NEWUSER`,
//! `CLONE_NEWPID`, `CLONE_NEWNET` (and the rarely used `CLONE_IO`); the
//! other namespace flags need `CAP_SYS_ADMIN`, which such a container
//! lacks. `clone3` answers `ENOSYS` (its flags cannot be filtered), and
//! C libraries fall back to `clone`.
//!
//! A syscall newer than the profile is refused (`EPERM`), as with Docker.

use std::sync::LazyLock;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::caps::CapSet;

/// `CLONE_NEWUSER`: every namespace flag a container without
/// `CAP_SYS_ADMIN` could use is at or above it.
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// The vendored profile, in Docker's format.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    arch_map: Vec<ArchMap>,
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "null_empty")]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_empty")]
    args: Vec<LinuxSeccompArg>,
    #[serde(default, deserialize_with = "null_empty")]
    includes: Filter,
    #[serde(default, deserialize_with = "null_empty")]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "null_empty")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "null_empty")]
    arches: Vec<String>,
    // `minKernel` (4.8) is left unread: every kernel atoll runs on is past
    // it.
}

/// Docker's profile writes `null` for an empty list.
fn null_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

static PROFILE: LazyLock<Result<Profile, String>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("seccomp/docker-default.json")).map_err(|e| e.to_string())
});

/// This machine's architecture as Docker's profile names it (Go's
/// `GOARCH`), and as libseccomp does.
fn arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        "loongarch64" => ("loong64", "SCMP_ARCH_LOONGARCH64"),
        other => (other, ""),
    }
}

/// Whether a rule applies to a container holding `caps` on `go_arch`.
fn applies(rule: &Rule, caps: &CapSet, go_arch: &str) -> bool {
    let holds = |c: &String| caps.contains(c.trim_start_matches("CAP_"));
    let inc = &rule.includes;
    let exc = &rule.excludes;
    (inc.arches.is_empty() || inc.arches.iter().any(|a| a == go_arch))
        && inc.caps.iter().all(holds)
        && !exc.arches.iter().any(|a| a == go_arch)
        && !exc.caps.iter().any(holds)
}

/// Docker's clone rule, in the form every runtime reads the same way.
fn portable(rule: &Rule) -> Result<Vec<LinuxSeccompArg>, OciSpecError> {
    let masked = rule
        .args
        .iter()
        .find(|a| a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq);
    match masked {
        Some(a) if rule.names.iter().any(|n| n == "clone") => Ok(vec![
            LinuxSeccompArgBuilder::default()
                .index(a.index())
                .value(CLONE_NEWUSER)
                .op(LinuxSeccompOperator::ScmpCmpLt)
                .build()?,
        ]),
        _ => Ok(rule.args.clone()),
    }
}

fn bad_profile(e: &str) -> OciSpecError {
    OciSpecError::Other(format!("the built-in seccomp profile cannot be read: {e}"))
}

/// The filter for a container whose bounding set is `caps`.
pub fn default_profile(caps: &CapSet) -> Result<LinuxSeccomp, OciSpecError> {
    let profile = PROFILE.as_ref().map_err(|e| bad_profile(e))?;
    let (go_arch, native) = arch();
    let mut arches = Vec::new();
    if let Some(map) = profile.arch_map.iter().find(|m| m.architecture == native) {
        for name in std::iter::once(&map.architecture).chain(&map.sub_architectures) {
            // An architecture oci-spec does not know is left out; the
            // native one is always known.
            if let Ok(a) = serde_json::from_value::<Arch>(serde_json::Value::String(name.clone())) {
                arches.push(a);
            }
        }
    }
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for rule in profile
        .syscalls
        .iter()
        .filter(|r| applies(r, caps, go_arch))
    {
        let mut b = LinuxSyscallBuilder::default()
            .names(rule.names.clone())
            .action(rule.action);
        if let Some(errno) = rule.errno_ret {
            b = b.errno_ret(errno);
        }
        let args = portable(rule)?;
        if !args.is_empty() {
            b = b.args(args);
        }
        syscalls.push(b.build()?);
    }
    let mut b = LinuxSeccompBuilder::default()
        .default_action(profile.default_action)
        .architectures(arches)
        .syscalls(syscalls);
    if let Some(errno) = profile.default_errno_ret {
        b = b.default_errno_ret(errno);
    }
    b.build()
}

/// The syscalls a container holding `caps` may make without conditions
/// on their arguments, sorted (for tests and `docs/security.md`).
#[cfg(test)]
pub fn allowed(caps: &CapSet) -> Vec<String> {
    let Ok(profile) = default_profile(caps) else {
        return Vec::new();
    };
    let mut out: Vec<String> = profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
        .flat_map(|s| s.names().clone())
        .collect();
    out.sort();
    out.dedup();
    out
}
