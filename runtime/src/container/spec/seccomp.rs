//! The default seccomp filter: every syscall is allowed except those
//! Docker's default profile refuses, which fail with `EPERM`. Syscalls that
//! Docker allows only with a capability stay allowed when the container
//! has that capability (`cap_add: [SYS_ADMIN]` allows `mount`).
//!
//! Docker's profile is an allow-list; this deny-list refuses the same
//! dangerous calls while never breaking a program for using a syscall
//! newer than the list.

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

use super::caps::CapSet;

const EPERM: u32 = 1;

/// Refused unless the container holds the capability next to them.
const GUARDED: &[(&str, &[&str])] = &[
    (
        "SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "bpf",
            "fanotify_init",
            "lookup_dcookie",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "name_to_handle_at",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "syslog",
        ],
    ),
    ("SYS_BOOT", &["reboot"]),
    (
        "SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("SYS_PACCT", &["acct"]),
    (
        "SYS_PTRACE",
        &["process_vm_readv", "process_vm_writev", "kcmp"],
    ),
    ("SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
        ],
    ),
    ("SYS_TTY_CONFIG", &["vhangup"]),
    (
        "SYS_NICE",
        &["get_mempolicy", "mbind", "set_mempolicy", "move_pages"],
    ),
    ("DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// Refused whatever the capabilities.
const ALWAYS: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "swapon",
    "swapoff",
    "userfaultfd",
    "nfsservctl",
    "uselib",
    "vm86",
    "vm86old",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "sysfs",
    "_sysctl",
    "ustat",
];

/// The names refused for a container holding `caps`, sorted.
pub fn refused(caps: &CapSet) -> Vec<String> {
    let mut names: Vec<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
    for (cap, calls) in GUARDED {
        if !caps.contains(*cap) {
            names.extend(calls.iter().map(|s| s.to_string()));
        }
    }
    names.sort();
    names.dedup();
    names
}

pub fn default_profile(caps: &CapSet) -> Result<LinuxSeccomp, OciSpecError> {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(vec![
            LinuxSyscallBuilder::default()
                .names(refused(caps))
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .build()?,
        ])
        .build()
}
