//! Container networking: a bridge per host, and per container a network
//! namespace joined to it by a veth pair, with an address leased from the
//! host's subnet. Several replicas on one host can so listen on the same
//! port; the gateway reaches each at `address:target port`.
//!
//! Leases are files (`<data>/net/leases/<ip>` holding the instance id and,
//! on a second line, its app), so a restarted host knows which namespaces
//! are its own and removes those no container uses any more, and the
//! firewall ([`super::firewall`]) knows every container's app. Links and
//! namespaces are made with iproute2's `ip`, each call bounded; the
//! firewall is rewritten whenever a container comes or goes or the
//! service addresses served change.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::addressing::hex8;
pub use super::addressing::{Subnet, mac_for, names, next_free, pick_subnet};
use super::firewall;

const IP_TIMEOUT: Duration = Duration::from_secs(10);
/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/var/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network setup: `ip {args}` failed: {message}")]
    Ip { args: String, message: String },
    #[error("network setup: {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("container subnet {subnet} has no free address left")]
    Exhausted { subnet: String },
    #[error("network isolation: nft: {0}")]
    Nft(#[from] firewall::NftError),
    #[error("user namespace: {0}")]
    Userns(String),
}

/// A container's place on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub netns: PathBuf,
    pub address: Ipv4Addr,
    /// The pinned user namespace that owns `netns` and its first host id,
    /// for a container that runs in one.
    pub userns: Option<(PathBuf, u32)>,
}

/// The host's container network.
#[derive(Debug, Clone)]
pub struct Network {
    pub bridge: String,
    pub subnet: Subnet,
    dir: PathBuf,
    /// Whether the bridge was made (or found) by this run: it is made when
    /// the first container starts, so a host that runs only components
    /// leaves no trace in the machine's network.
    bridge_ready: std::sync::Arc<tokio::sync::OnceCell<()>>,
    firewall: std::sync::Arc<FirewallState>,
}

/// What the firewall is made from besides the leases, and the ruleset
/// last written (rewritten only when it changes).
#[derive(Debug, Default)]
struct FirewallState {
    written: tokio::sync::Mutex<Option<String>>,
    served: std::sync::Mutex<BTreeSet<(String, Ipv4Addr, u16)>>,
    cluster_ports: std::sync::Mutex<BTreeSet<(Ipv4Addr, u16)>>,
    catch_all: std::sync::Mutex<Option<u16>>,
    /// The last write failed: the next [`Network::serve`] writes again.
    failed: std::sync::atomic::AtomicBool,
}

/// A lease file's text: the instance id, then its app.
fn lease_text(instance: &str, app: &str) -> String {
    format!("{instance}\n{app}\n")
}

/// The instance and app of a lease file's text (a lease of an older
/// release names the instance only).
fn lease_owner(text: &str) -> (&str, Option<&str>) {
    let mut lines = text.lines().map(str::trim);
    let id = lines.next().unwrap_or_default();
    (id, lines.next().filter(|a| !a.is_empty()))
}

impl Network {
    /// This host's network (the bridge is made when first needed). The
    /// subnet is `requested`, else the one this data dir used before, else
    /// a free `10.89.N.0/24`.
    pub async fn setup(data_dir: &Path, requested: Option<Subnet>) -> Result<Network, NetError> {
        let dir = data_dir.join("net");
        let leases = dir.join("leases");
        std::fs::create_dir_all(&leases).map_err(|source| NetError::Io {
            what: format!("creating {}", leases.display()),
            source,
        })?;
        let bridge = format!("atoll-{}", hex8(&data_dir.to_string_lossy()));
        let saved = std::fs::read_to_string(dir.join("subnet"))
            .ok()
            .and_then(|s| Subnet::parse(s.trim()).ok());
        let subnet = match (requested, saved) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                let taken = interface_addresses().await?;
                let first = Sha256::digest(data_dir.to_string_lossy().as_bytes())[0];
                pick_subnet(&taken, first).ok_or(NetError::Exhausted {
                    subnet: "10.89.0.0/16".into(),
                })?
            }
        };
        let _ = std::fs::write(dir.join("subnet"), subnet.to_string());
        Ok(Network {
            bridge,
            subnet,
            dir,
            bridge_ready: std::sync::Arc::default(),
            firewall: std::sync::Arc::default(),
        })
    }

    /// Makes the bridge, once per run.
    pub async fn ready(&self) -> Result<(), NetError> {
        self.bridge_ready
            .get_or_try_init(|| self.ensure_bridge())
            .await?;
        Ok(())
    }

    async fn ensure_bridge(&self) -> Result<(), NetError> {
        let br = self.bridge.as_str();
        if ip(&["link", "show", br]).await.is_err() {
            ip(&["link", "add", br, "type", "bridge"]).await?;
        }
        let cidr = format!("{}/{}", self.subnet.gateway(), self.subnet.prefix);
        let shown = ip(&["-4", "addr", "show", "dev", br]).await?;
        if !shown.contains(&cidr) {
            ip(&["addr", "add", &cidr, "dev", br]).await?;
        }
        // A fixed MAC: a bridge takes its lowest port's otherwise, which
        // changes as containers come and go, and every container's cached
        // entry for its gateway would go stale.
        let mac = mac_for(self.subnet.gateway());
        ip(&["link", "set", br, "address", &mac, "up"]).await?;
        // Containers reach the outside through the host: forwarding on,
        // their source address masqueraded by the firewall, which is
        // written before any container runs (no firewall, no container).
        super::forwarding::enable(&self.dir);
        remove_legacy_masquerade(&self.subnet.to_string(), br).await;
        self.sync_firewall().await
    }

    /// Rewrites the firewall from the leases and the service addresses
    /// served, if that changes it; whether the write failed is kept, for
    /// [`Self::serve`] to try again.
    pub async fn sync_firewall(&self) -> Result<(), NetError> {
        let mut written = self.firewall.written.lock().await;
        let rules = firewall::Rules {
            members: self.members(),
            served: lock(&self.firewall.served).clone(),
            resolvers: firewall::resolvers(),
            cluster_ports: lock(&self.firewall.cluster_ports).clone(),
            catch_all: (lock(&self.firewall.catch_all))
                .map(|port| std::net::SocketAddrV4::new(self.subnet.gateway(), port)),
        };
        let text = firewall::render(&self.bridge, self.subnet, &rules);
        if written.as_deref() == Some(text.as_str()) {
            self.firewall.failed.store(false, Ordering::Relaxed);
            return Ok(());
        }
        let applied = firewall::apply(&text).await;
        self.firewall
            .failed
            .store(applied.is_err(), Ordering::Relaxed);
        applied?;
        *written = Some(text);
        Ok(())
    }

    /// The service addresses this host serves (`(app, address, port)` of
    /// every open listener), the catch-all listener's port on the bridge
    /// address (their other ports) and the cluster's own ports (peers'
    /// mesh ports): containers of an app reach the former, none the
    /// latter.
    pub async fn serve(
        &self,
        served: BTreeSet<(String, Ipv4Addr, u16)>,
        catch_all: Option<u16>,
        cluster_ports: BTreeSet<(Ipv4Addr, u16)>,
    ) -> Result<(), NetError> {
        let changed = {
            let mut s = lock(&self.firewall.served);
            let mut c = lock(&self.firewall.cluster_ports);
            let mut a = lock(&self.firewall.catch_all);
            let changed = *s != served || *c != cluster_ports || *a != catch_all;
            *s = served;
            *c = cluster_ports;
            *a = catch_all;
            changed
        };
        // A write that failed (here or elsewhere) is tried again.
        let failed = self.firewall.failed.load(Ordering::Relaxed);
        if !(changed || failed) || !self.bridge_ready.initialized() {
            return Ok(());
        }
        self.sync_firewall().await
    }

    /// Every leased container, for the firewall.
    fn members(&self) -> Vec<firewall::Member> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("leases"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(address) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let (id, app) = lease_owner(&text);
            if id.is_empty() {
                continue;
            }
            out.push(firewall::Member {
                veth: names(id).1,
                address,
                app: app.map(String::from),
            });
        }
        out.sort_by_key(|m| m.address);
        out
    }

    /// Gives `instance` a namespace, a veth into the bridge and an address.
    /// Idempotent: an instance that has a lease keeps its address; a
    /// half-made namespace from an earlier attempt is removed first.
    pub async fn attach(
        &self,
        instance: &str,
        app: &str,
        userns: Option<u32>,
    ) -> Result<Attachment, NetError> {
        self.ready().await?;
        let (ns, veth) = names(instance);
        let address = self.lease(instance, app)?;
        if Path::new(NETNS_DIR).join(&ns).exists() {
            let _ = ip(&["netns", "del", &ns]).await;
        }
        let pin = self.userns_pin(instance);
        super::userns::remove_pin(&pin);
        let userns = match userns {
            Some(base) => {
                let (user, net) = (pin.clone(), Path::new(NETNS_DIR).join(&ns));
                let made = tokio::task::spawn_blocking(move || {
                    super::userns::make_pair(&user, &net, base)
                })
                .await
                .map_err(|e| NetError::Userns(e.to_string()))?;
                if let Err(e) = made {
                    self.release(instance);
                    return Err(NetError::Userns(e.to_string()));
                }
                Some((pin.clone(), base))
            }
            None => None,
        };
        // Fail closed: a container runs only once the firewall knows it.
        let mut result = self.plumb(&ns, &veth, address, userns.is_none()).await;
        if result.is_ok() {
            result = self.sync_firewall().await;
        }
        if let Err(e) = result {
            let _ = ip(&["netns", "del", &ns]).await;
            super::userns::remove_pin(&pin);
            self.release(instance);
            let _ = self.sync_firewall().await;
            return Err(e);
        }
        Ok(Attachment {
            netns: Path::new(NETNS_DIR).join(&ns),
            address,
            userns,
        })
    }

    /// Where the user namespace of `instance` is pinned, when it has one.
    fn userns_pin(&self, instance: &str) -> PathBuf {
        self.dir.join("userns").join(instance)
    }

    /// `make_ns`: the namespace is made here (else it was, with its user
    /// namespace).
    async fn plumb(
        &self,
        ns: &str,
        veth: &str,
        address: Ipv4Addr,
        make_ns: bool,
    ) -> Result<(), NetError> {
        // The peer is created straight inside the namespace, as eth0. Each
        // `ip` run costs a few milliseconds: one batch per namespace.
        let make = make_ns.then(|| format!("netns add {ns}"));
        let lines: Vec<String> = make
            .into_iter()
            .chain([
                format!(
                    "link add {veth} type veth peer name eth0 address {} netns {ns}",
                    mac_for(address)
                ),
                format!("link set {veth} master {} up", self.bridge),
            ])
            .collect();
        ip_batch(None, &lines).await?;
        let cidr = format!("{address}/{}", self.subnet.prefix);
        let gw = self.subnet.gateway().to_string();
        ip_batch(
            Some(ns),
            &[
                format!("addr add {cidr} dev eth0"),
                "link set eth0 up".into(),
                "link set lo up".into(),
                format!("route add default via {gw}"),
            ],
        )
        .await
    }

    /// Removes the namespace (which takes the veth pair with it) and the
    /// lease. Safe to call for an instance that has neither.
    pub async fn detach(&self, instance: &str) {
        let (ns, veth) = names(instance);
        // Tried a few times: on a loaded machine `ip` may not answer within
        // its bound, and a namespace left behind outlives the host.
        for attempt in 1..=NETNS_DEL_ATTEMPTS {
            if !Path::new(NETNS_DIR).join(&ns).exists() {
                break;
            }
            if let Err(e) = ip(&["netns", "del", &ns]).await {
                tracing::warn!(instance, attempt, error = %e, "could not remove network namespace");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        super::userns::remove_pin(&self.userns_pin(instance));
        // Normally gone with the namespace; a pair whose peer never moved
        // into it is not.
        if Path::new("/sys/class/net").join(&veth).exists() {
            let _ = ip(&["link", "del", veth.as_str()]).await;
        }
        // The next container leasing the address may have another MAC
        // (one made by an earlier release): forget the old one.
        for address in self.release(instance) {
            let to = address.to_string();
            let _ = ip(&["neigh", "del", &to, "dev", &self.bridge]).await;
        }
        if self.bridge_ready.initialized()
            && let Err(e) = self.sync_firewall().await
        {
            tracing::warn!(instance, error = %e, "could not update the firewall");
        }
    }

    /// Removes the bridge (after every container is gone). A later
    /// `setup` makes it again.
    pub async fn remove_bridge(&self) {
        if let Err(e) = firewall::apply(&firewall::removal(&self.bridge)).await {
            tracing::warn!(bridge = %self.bridge, error = %e, "could not remove the firewall");
        }
        remove_legacy_masquerade(&self.subnet.to_string(), &self.bridge).await;
        if ip(&["link", "show", &self.bridge]).await.is_ok()
            && let Err(e) = ip(&["link", "del", &self.bridge]).await
        {
            tracing::warn!(bridge = %self.bridge, error = %e, "could not remove the bridge");
        }
        super::forwarding::restore(&self.dir);
    }

    /// Instances holding a lease (for clean-up after a restart).
    pub fn leased(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("leases")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|s| lease_owner(&s).0.to_string())
            .collect()
    }

    /// The address leased to `instance`, if any.
    pub fn address_of(&self, instance: &str) -> Option<Ipv4Addr> {
        std::fs::read_dir(self.dir.join("leases"))
            .ok()?
            .flatten()
            .find(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|s| lease_owner(&s).0 == instance)
            })
            .and_then(|e| e.file_name().to_string_lossy().parse().ok())
    }

    fn lease(&self, instance: &str, app: &str) -> Result<Ipv4Addr, NetError> {
        let dir = self.dir.join("leases");
        let mut used = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(ip) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else {
                continue;
            };
            if std::fs::read_to_string(entry.path()).is_ok_and(|s| lease_owner(&s).0 == instance) {
                return Ok(ip);
            }
            used.push(ip);
        }
        loop {
            let ip = next_free(self.subnet, &used).ok_or_else(|| NetError::Exhausted {
                subnet: self.subnet.to_string(),
            })?;
            // create_new: two instances starting at once never share one.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(ip.to_string()))
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = f.write_all(lease_text(instance, app).as_bytes());
                    return Ok(ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => used.push(ip),
                Err(source) => {
                    return Err(NetError::Io {
                        what: "writing an address lease".into(),
                        source,
                    });
                }
            }
        }
    }

    /// Removes `instance`'s leases; the addresses they held.
    fn release(&self, instance: &str) -> Vec<Ipv4Addr> {
        let mut freed = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("leases"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_to_string(entry.path()).is_ok_and(|s| lease_owner(&s).0 == instance) {
                let _ = std::fs::remove_file(entry.path());
                freed.extend(entry.file_name().to_string_lossy().parse::<Ipv4Addr>());
            }
        }
        freed
    }
}

/// Adds `addr/32` to interface `name`.
pub async fn add_address(name: &str, addr: Ipv4Addr) -> Result<(), NetError> {
    ip(&["addr", "replace", &format!("{addr}/32"), "dev", name])
        .await
        .map(drop)
}

/// Removes `addr/32` from interface `name`.
pub async fn remove_address(name: &str, addr: Ipv4Addr) {
    let _ = ip(&["addr", "del", &format!("{addr}/32"), "dev", name]).await;
}

/// Removes the iptables MASQUERADE rule an earlier release added for
/// this bridge (the firewall does the NAT now), if iptables is there.
async fn remove_legacy_masquerade(subnet: &str, bridge: &str) {
    let rule = ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"];
    // Bounded: a rule added twice is deleted twice.
    for _ in 0..8 {
        let deleted = Command::new("iptables")
            .args(["-t", "nat", "-D", "POSTROUTING"])
            .args(rule)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if !deleted.is_ok_and(|s| s.success()) {
            return;
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// IPv4 addresses on this machine's interfaces.
async fn interface_addresses() -> Result<Vec<Ipv4Addr>, NetError> {
    let out = ip(&["-4", "-o", "addr", "show"]).await?;
    Ok(out
        .split_whitespace()
        .filter_map(|w| w.split_once('/').and_then(|(a, _)| a.parse().ok()))
        .collect())
}

/// Tries at removing a container's network namespace.
const NETNS_DEL_ATTEMPTS: u32 = 3;

async fn ip(args: &[&str]) -> Result<String, NetError> {
    run_ip(args, None, args.join(" ")).await
}

/// Several `ip` commands in one process, inside namespace `ns` if given.
async fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<(), NetError> {
    let mut args: Vec<&str> = ns.map(|n| vec!["-n", n]).unwrap_or_default();
    args.extend(["-batch", "-"]);
    let shown = format!("{} ({})", args.join(" "), lines.join("; "));
    run_ip(&args, Some(lines.join("\n") + "\n"), shown)
        .await
        .map(drop)
}

/// Runs `ip ARGS`, bounded, with `input` on its stdin; its stdout, or an
/// error showing `shown` and what `ip` said.
async fn run_ip(args: &[&str], input: Option<String>, shown: String) -> Result<String, NetError> {
    let err = |message: String| NetError::Ip {
        args: shown.clone(),
        message,
    };
    let mut child = Command::new("ip")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot run ip (iproute2): {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    let out = tokio::time::timeout(IP_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| err(format!("no answer within {IP_TIMEOUT:?}")))?
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
