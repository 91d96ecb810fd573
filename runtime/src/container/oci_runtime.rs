//! The OCI runtime binary (youki by default; runc and crun take the same
//! command line): `create`, `start`, `state`, `kill`, `delete`.
//!
//! The binary is run, not linked: libcontainer forks the calling process,
//! which is unsafe in a multi-threaded tokio process. Every call is
//! bounded by a timeout; a runtime that hangs is killed and reported.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

/// Bound on `create` (it sets up namespaces, mounts and cgroups).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the other calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("OCI runtime {} could not be run: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("OCI runtime `{verb}` for {id} did not finish within {timeout:?}")]
    Timeout {
        verb: &'static str,
        id: String,
        timeout: Duration,
    },
    #[error("OCI runtime `{verb}` for {id} failed: {message}")]
    Failed {
        verb: &'static str,
        id: String,
        message: String,
    },
    #[error("OCI runtime `state` for {id} gave unreadable output: {message}")]
    BadState { id: String, message: String },
}

/// What `state` reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// `creating`, `created`, `running`, `stopped` (youki adds `paused`).
    pub status: String,
    #[serde(default)]
    pub pid: Option<i32>,
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

/// One runtime binary with its own state directory (`--root`), so two
/// hosts on one machine never see each other's containers.
#[derive(Clone, Debug)]
pub struct OciRuntime {
    pub binary: PathBuf,
    pub root: PathBuf,
}

impl OciRuntime {
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            root: root.into(),
        }
    }

    /// Whether the binary can be run at all (for a clear error at start-up).
    pub async fn version(&self) -> Result<String, RuntimeError> {
        // No `--root`: a runtime that is not there fails here, clearly.
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--version").kill_on_drop(true);
        let out = self.output(cmd, "version", "-", CALL_TIMEOUT).await?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    }

    /// `create`: the container's process is set up and waits for `start`.
    /// Its stdout and stderr go to `log` (appended).
    pub async fn create(&self, id: &str, bundle: &Path, log: &Path) -> Result<(), RuntimeError> {
        let spawn_err = |source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(spawn_err)?;
        let err_file = file.try_clone().map_err(spawn_err)?;
        let bundle = bundle.to_string_lossy();
        let pid_file = format!("{bundle}/container.pid");
        let mut cmd = self.command(&["create", "--bundle", &bundle, "--pid-file", &pid_file, id]);
        // The container inherits these: its output lands in the log file.
        // The runtime's own errors go there too, so they are read back from
        // the file's tail on failure.
        cmd.stdin(Stdio::null()).stdout(file).stderr(err_file);
        let status = self.wait(cmd, "create", id, CREATE_TIMEOUT).await?;
        if !status.success() {
            return Err(RuntimeError::Failed {
                verb: "create",
                id: id.to_string(),
                message: summarize(&tail(log, 16 << 10)),
            });
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("start", id, &["start", id], CALL_TIMEOUT)
            .await
            .map(drop)
    }

    /// `None` when the runtime does not know the container.
    pub async fn state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        match self.run("state", id, &["state", id], CALL_TIMEOUT).await {
            Ok(out) => serde_json::from_str(&out)
                .map(Some)
                .map_err(|e| RuntimeError::BadState {
                    id: id.to_string(),
                    message: e.to_string(),
                }),
            Err(RuntimeError::Failed { message, .. }) if is_not_found(&message) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `signal` (`TERM`, `KILL`) to the container's init process.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.run("kill", id, &["kill", id, signal], CALL_TIMEOUT)
            .await
            .map(drop)
    }

    /// Runs `argv` inside the running container (a health check), bounded
    /// by `timeout`: whether it exited with status 0, and the end of what
    /// it printed ([`Self::exec_output`]).
    pub async fn exec(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<(bool, String), RuntimeError> {
        let out = self.exec_output(id, argv, timeout).await?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        let last: String = last.unwrap_or_default().trim().chars().take(200).collect();
        Ok((out.status.success(), last))
    }

    /// Runs `argv` inside the running container, bounded by `timeout`: its
    /// status and whole output. A command still running at the timeout is
    /// killed inside the container too, not only the runtime process that
    /// started it.
    pub async fn exec_output(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<std::process::Output, RuntimeError> {
        let (pid_file, cmd) = self.exec_command(id, argv, "exec");
        let out = self.collect(cmd, "exec", id, timeout).await;
        if matches!(out, Err(RuntimeError::Timeout { .. })) {
            kill_pid_in(&pid_file);
        }
        let _ = std::fs::remove_file(&pid_file);
        out
    }

    /// Starts `argv` inside the running container for `atoll exec -i/-t`
    /// and returns at once. With `tty` (rows, columns), the runtime and so
    /// the command get a new terminal as stdio ([`super::pty`]), kept in
    /// [`Interactive::terminal`]; without, the command's stdio are the
    /// child's pipes. The runtime process waits for the command and exits
    /// with its status.
    pub fn exec_interactive(
        &self,
        id: &str,
        argv: &[String],
        tty: Option<(u16, u16)>,
    ) -> Result<Interactive, RuntimeError> {
        let (pid_file, mut cmd) = self.exec_command(id, argv, "session");
        let spawn_error = |source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        };
        let terminal = match tty {
            Some((rows, cols)) => {
                let (master, slave) = super::pty::open(rows, cols).map_err(spawn_error)?;
                let clone =
                    |fd: &std::os::fd::OwnedFd| fd.try_clone().map(std::process::Stdio::from);
                cmd.stdin(clone(&slave).map_err(spawn_error)?)
                    .stdout(clone(&slave).map_err(spawn_error)?)
                    .stderr(std::process::Stdio::from(slave));
                Some(master)
            }
            None => {
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                None
            }
        };
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe { cmd.pre_exec(super::pty::new_session) };
        let child = cmd.spawn().map_err(spawn_error)?;
        Ok(Interactive {
            child,
            terminal,
            pid_file,
        })
    }

    /// `<runtime> exec` of `argv` in container `id`, and the file the
    /// runtime writes the command's PID to (named with `tag` and a number
    /// of its own).
    fn exec_command(&self, id: &str, argv: &[String], tag: &str) -> (PathBuf, Command) {
        static EXECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = EXECS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid_file = self.root.join(format!("{id}.{tag}-{n}.pid"));
        let pid_arg = pid_file.to_string_lossy().into_owned();
        let mut args = vec!["exec", "--pid-file", &pid_arg, id];
        // The command's words are never the runtime's options.
        args.push("--");
        args.extend(argv.iter().map(String::as_str));
        (pid_file, self.command(&args))
    }

    /// Removes the container (`--force`: kills it first if it still runs)
    /// with its cgroup. A container the runtime does not know is fine.
    pub async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        match self
            .run("delete", id, &["delete", "--force", id], CALL_TIMEOUT)
            .await
        {
            Err(RuntimeError::Failed { message, .. }) if is_not_found(&message) => Ok(()),
            other => other.map(drop),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        // Errors, not backtraces, are what the user should read.
        cmd.env("RUST_BACKTRACE", "0").kill_on_drop(true);
        // What the agent ignores is not the containers' to inherit (an
        // agent started in the background by a shell ignores SIGINT and
        // SIGQUIT, one under nohup SIGHUP): a shell as PID 1 could not
        // even trap them.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe { cmd.pre_exec(default_signals) };
        cmd
    }

    /// Runs `<runtime> --root <root> ARGS`; its stdout.
    async fn run(
        &self,
        verb: &'static str,
        id: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        self.output(self.command(args), verb, id, timeout).await
    }

    /// Runs `cmd` (bounded by `timeout`); its stdout, or the failure with
    /// the gist of its stderr.
    async fn output(
        &self,
        cmd: Command,
        verb: &'static str,
        id: &str,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let out = self.collect(cmd, verb, id, timeout).await?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(RuntimeError::Failed {
                verb,
                id: id.to_string(),
                message: summarize(&stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `cmd` (bounded by `timeout`; on timeout the child is dropped,
    /// which kills it) and collects its status and output.
    async fn collect(
        &self,
        mut cmd: Command,
        verb: &'static str,
        id: &str,
        timeout: Duration,
    ) -> Result<std::process::Output, RuntimeError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| RuntimeError::Timeout {
                verb,
                id: id.to_string(),
                timeout,
            })?
            .map_err(|source| RuntimeError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        Ok(out)
    }

    async fn wait(
        &self,
        mut cmd: Command,
        verb: &'static str,
        id: &str,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, RuntimeError> {
        let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => status.map_err(|source| RuntimeError::Spawn {
                binary: self.binary.clone(),
                source,
            }),
            Err(_) => {
                let _ = child.kill().await;
                Err(RuntimeError::Timeout {
                    verb,
                    id: id.to_string(),
                    timeout,
                })
            }
        }
    }
}

fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not exist") || m.contains("not found") || m.contains("no such")
}

/// The runtime's error output reduced to what says what went wrong: the
/// first error line of its last attempt (runtimes log the cause first,
/// then each layer that passed it on), without backtraces.
pub fn summarize(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("at ") && !l.starts_with("Stack backtrace"))
        // Backtrace frames: `  12: some::function`.
        .filter(|l| {
            l.split(':')
                .next()
                .is_none_or(|n| n.trim().parse::<u32>().is_err())
        })
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    // The last attempt's lines are at the end; its first error is the cause.
    let last_attempt_start = errors
        .iter()
        .rposition(|l| l.contains("libcontainer::process") || l.starts_with("ERROR"))
        .map(|last| {
            let mut i = last;
            while i > 0 && errors[i - 1].starts_with("ERROR") {
                i -= 1;
            }
            i
        });
    match (last_attempt_start, errors.last(), lines.last()) {
        (Some(i), _, _) => strip_level(errors[i]),
        (None, Some(e), _) => strip_level(e),
        (None, None, Some(l)) => l.to_string(),
        _ => "no error output".to_string(),
    }
}

fn strip_level(line: &str) -> String {
    line.trim_start_matches("ERROR").trim().to_string()
}

/// The last `bytes` of a file, as text.
pub fn tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `n` non-empty lines of a log file (for exit and error reports).
pub fn last_lines(path: &Path, n: usize) -> String {
    let text = tail(path, 8192);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Sets every signal the runtime may inherit ignored back to its default
/// action. Meant for `pre_exec`: signal(2) is async-signal-safe.
fn default_signals() -> std::io::Result<()> {
    for signal in 1..32 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: signal(2) with the default action.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    Ok(())
}

/// An interactive exec started by [`OciRuntime::exec_interactive`].
pub struct Interactive {
    /// The runtime process: it exits with the command's status.
    pub child: tokio::process::Child,
    /// The terminal's master end (with `tty`).
    pub terminal: Option<std::fs::File>,
    pid_file: std::path::PathBuf,
}

impl Interactive {
    /// Sends `signal` to the command and what it started: the runtime's
    /// init starts it as the leader of a session (and process group) of
    /// its own, which its children share unless they leave it. False while
    /// the runtime has not written the command's PID yet.
    pub fn signal_command(&self, signal: i32) -> bool {
        signal_group_in(&self.pid_file, signal)
    }

    /// [`Self::signal_command`] for a task that outlives a borrow.
    pub fn command_signaller(&self) -> impl Fn(i32) -> bool + Send + Sync + 'static {
        let pid_file = self.pid_file.clone();
        move |signal| signal_group_in(&pid_file, signal)
    }

    /// Kills the command and what it started; then the runtime process
    /// (and its session), which exits with the command anyway. While the
    /// command's PID is unknown the runtime is left alone unless
    /// `runtime_too`: killed mid-start it could leave a command behind
    /// that nothing waits for. Meant to be called again until the runtime
    /// has exited.
    pub fn kill(&mut self, runtime_too: bool) {
        let known = self.signal_command(libc::SIGKILL);
        if !(known || runtime_too) {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) of the process group our child leads (its
            // PID, from setsid); `id()` is None once it was reaped, so the
            // PID is not another process's.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }
}

/// Sends `signal` to the process group led by the PID in `pid_file`, and
/// to that process (in case it left its group).
fn signal_group_in(pid_file: &std::path::Path, signal: i32) -> bool {
    let Some(pid) = pid_in(pid_file) else {
        return false;
    };
    // SAFETY: kill(2) with a PID the runtime reported for the process it
    // started; one that is gone already yields ESRCH, ignored.
    unsafe {
        libc::kill(-pid, signal);
        libc::kill(pid, signal);
    }
    true
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The PID the runtime wrote to `pid_file` (never 1 or less: not a
/// process of ours to signal).
fn pid_in(pid_file: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    text.trim().parse::<i32>().ok().filter(|&pid| pid > 1)
}

/// SIGKILL to the process whose PID the runtime wrote to `pid_file`.
fn kill_pid_in(pid_file: &std::path::Path) {
    if let Some(pid) = pid_in(pid_file) {
        // SAFETY: kill(2) with a PID the runtime reported for a process it
        // started; a PID that is gone already yields ESRCH, ignored.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in runtime whose `exec` starts a long sleep, reports its
    /// PID like youki does (and in a second file, for the test), and waits.
    #[tokio::test]
    async fn an_exec_past_its_timeout_is_killed_inside_too() {
        let dir = std::env::temp_dir().join(format!("atoll-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let fake = dir.join("runtime");
        // argv: --root ROOT exec --pid-file FILE ID CMD…
        let script = "#!/bin/sh\nsleep 30 &\necho $! > \"$5\"\necho $! > \"$5.seen\"\nwait\n";
        std::fs::write(&fake, script).expect("fake");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&fake, mode).expect("chmod");
        let rt = OciRuntime::new(&fake, &dir);
        let argv = ["true".to_string()];
        let out = rt.exec("c1", &argv, Duration::from_millis(300)).await;
        assert!(matches!(out, Err(RuntimeError::Timeout { .. })), "{out:?}");
        let seen = std::fs::read_to_string(dir.join("c1.exec-0.pid.seen")).expect("pid");
        let pid: u32 = seen.trim().parse().expect("a pid");
        assert!(
            !dir.join("c1.exec-0.pid").exists(),
            "the PID file is removed"
        );
        // Gone, or a zombie waiting for init to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                let state = st
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                state != Some("Z")
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!alive(), "the check's process {pid} survived its timeout");
    }

    #[test]
    fn the_cause_is_picked_out_of_a_runtime_error_report() {
        let out = "ERROR libcontainer::process::container_intermediate_process: failed to set rlimit err=Nix(EPERM)\n\
ERROR libcontainer::process::container_main_process: failed to run intermediate process EPERM\n\
ERROR youki: error in executing command: failed to create container\n\
\n\
Stack backtrace:\n\
   0: anyhow::error\n\
      at /src/lib.rs:1\n\
Error: failed to create container: intermediate process error EPERM\n";
        assert_eq!(
            summarize(out),
            "libcontainer::process::container_intermediate_process: failed to set rlimit err=Nix(EPERM)"
        );
        assert_eq!(summarize("container not found\n"), "container not found");
        assert_eq!(summarize(""), "no error output");
    }
}
