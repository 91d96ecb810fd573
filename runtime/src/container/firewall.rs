//! Per-app network isolation with nftables: a container reaches its own
//! app's containers and service addresses, and the outside world through
//! NAT, and nothing else — not other apps' containers, not this machine's
//! addresses (except the service addresses atoll serves its app), not
//! other hosts' containers on this machine, not peers' mesh ports, not
//! link-local services such as 169.254.169.254.
//!
//! Two tables per host, named after its bridge: a `bridge` table decides
//! between the bridge's ports (frames between two containers never reach
//! the IP hooks unless `br_netfilter` is loaded), an `inet` table what
//! reaches this machine (input), what goes through it (forward) and the
//! NAT. An app is a host-local number carried as the packet mark from a
//! map lookup to a set lookup (nft cannot look a map up inside a
//! concatenation); the mark is set only where the packet is delivered or
//! bridged, so it never reaches routing. Every base chain's policy is
//! accept and every rule is scoped to this host's bridge: another table's
//! traffic is never decided here.
//!
//! The whole ruleset is rendered from plain data ([`render`], unit
//! tested) and replaced in one `nft -f` transaction whenever it changes
//! (about 20 ms; established connections keep going).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// `nft` failed or could not run; what it said.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NftError(String);

const NFT_TIMEOUT: Duration = Duration::from_secs(10);

/// A container on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The host end of its veth.
    pub veth: String,
    pub address: Ipv4Addr,
    /// Its app; `None` for a lease of an older release (isolated from all).
    pub app: Option<String>,
}

/// Everything the ruleset is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub members: Vec<Member>,
    /// `(app, service address, port)` of every open listener.
    pub served: BTreeSet<(String, Ipv4Addr, u16)>,
    /// The containers' resolvers (their `resolv.conf`): reachable on port
    /// 53 when one is an address of this machine.
    pub resolvers: BTreeSet<Ipv4Addr>,
    /// Peers' mesh ports and the like: never reached from a container.
    pub cluster_ports: BTreeSet<(Ipv4Addr, u16)>,
    /// The service proxy's catch-all listener: a connection to a service
    /// address on a port with no listener of its own (a database's 5432
    /// that no `ports:` names) is turned to it, so every port of a
    /// service is reachable as in Compose.
    pub catch_all: Option<std::net::SocketAddrV4>,
}

/// The table name for `bridge` (`atoll-1a2b3c4d` → `atoll_1a2b3c4d`).
pub fn table_name(bridge: &str) -> String {
    bridge.replace('-', "_")
}

/// App numbers: 1.. for the apps named, in name order, then one each for
/// members without a known app.
fn numbers(rules: &Rules) -> (BTreeMap<&str, u32>, Vec<u32>) {
    let names: BTreeSet<&str> = (rules.members.iter())
        .filter_map(|m| m.app.as_deref())
        .chain(rules.served.iter().map(|(a, _, _)| a.as_str()))
        .collect();
    let known: BTreeMap<&str, u32> = names.into_iter().zip(1..).collect();
    let mut next = known.len() as u32 + 1;
    let per_member = (rules.members.iter())
        .map(|m| match m.app.as_deref().and_then(|a| known.get(a)) {
            Some(n) => *n,
            None => {
                next += 1;
                next - 1
            }
        })
        .collect();
    (known, per_member)
}

fn elements(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.is_empty() {
        true => String::new(),
        false => format!(" elements = {{ {} }};", items.join(", ")),
    }
}

/// The whole ruleset of the host whose bridge is `bridge`, as one `nft -f`
/// transaction that replaces any earlier copy.
pub fn render(bridge: &str, subnet: impl std::fmt::Display, rules: &Rules) -> String {
    let t = table_name(bridge);
    let (apps, per_member) = numbers(rules);
    let m = &rules.members;
    let ports = elements(m.iter().map(|m| format!("\"{}\"", m.veth)));
    let port_ip = elements(m.iter().map(|m| format!("\"{}\" . {}", m.veth, m.address)));
    let port_app = elements(
        m.iter()
            .zip(&per_member)
            .map(|(m, n)| format!("\"{}\" : {n}", m.veth)),
    );
    let members = elements(
        m.iter()
            .zip(&per_member)
            .map(|(m, n)| format!("{n} . \"{}\"", m.veth)),
    );
    let app_of = elements(
        m.iter()
            .zip(&per_member)
            .map(|(m, n)| format!("{} : {n}", m.address)),
    );
    let vip_ports = elements((rules.served.iter()).filter_map(|(app, vip, port)| {
        apps.get(app.as_str())
            .map(|n| format!("{n} . {vip} . {port}"))
    }));
    let host_dns = elements(
        (rules.resolvers.iter())
            .flat_map(|r| [format!("{r} . udp . 53"), format!("{r} . tcp . 53")]),
    );
    let cluster_ports = elements(
        rules
            .cluster_ports
            .iter()
            .map(|(a, p)| format!("{a} . {p}")),
    );
    let catch = catch_all(bridge, rules);
    format!(
        r#"add table inet {t}
delete table inet {t}
add table bridge {t}
delete table bridge {t}
table bridge {t} {{
    set ports {{ type ifname;{ports} }}
    set port_ip {{ type ifname . ipv4_addr;{port_ip} }}
    map port_app {{ type ifname : mark;{port_app} }}
    set members {{ type mark . ifname;{members} }}
    chain prerouting {{
        type filter hook prerouting priority filter; policy accept;
        iifname != @ports return
        ether type arp iifname . arp saddr ip @port_ip accept
        ether type ip iifname . ip saddr @port_ip accept
        counter drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname != @ports return
        meta mark set iifname map @port_app
        meta mark . oifname @members accept
        counter drop
    }}
}}
table inet {t} {{
    map app_of {{ type ipv4_addr : mark;{app_of} }}
    set vip_ports {{ type mark . ipv4_addr . inet_service;{vip_ports} }}
    set host_dns {{ type ipv4_addr . inet_proto . inet_service;{host_dns} }}
    set cluster_ports {{ type ipv4_addr . inet_service;{cluster_ports} }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname != "{bridge}" return
        ct state established,related accept
        meta nfproto ipv6 counter drop
        meta mark set ip saddr map @app_of
        meta mark . ip daddr . tcp dport @vip_ports socket wildcard 0 accept{catch_accept}
        ip daddr . meta l4proto . th dport @host_dns accept
        meta l4proto tcp counter reject with tcp reset
        counter reject with icmpx admin-prohibited
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{bridge}" oifname "{bridge}" accept
        oifname "{bridge}" ct state established,related accept
        oifname "{bridge}" counter drop
        iifname != "{bridge}" return
        meta nfproto ipv6 counter drop
        ip saddr != {subnet} counter drop
        oifname "atoll-*" counter reject with icmpx admin-prohibited
        ip daddr {{ 169.254.0.0/16, 10.90.0.0/16 }} counter reject with icmpx admin-prohibited
        ip daddr . tcp dport @cluster_ports counter reject with tcp reset
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}{catch_chains}
}}
"#,
        catch_accept = catch.accept,
        catch_chains = catch.chains,
    )
}

/// The catch-all's part of the inet table: its sets and NAT chains, and
/// the input rule that lets a connection reach it only when turned there
/// (a container's, to a service address of its own app; this machine's).
struct CatchAll {
    accept: String,
    chains: String,
}

fn catch_all(bridge: &str, rules: &Rules) -> CatchAll {
    let (Some(to), false) = (rules.catch_all, rules.served.is_empty()) else {
        return CatchAll {
            accept: String::new(),
            chains: String::new(),
        };
    };
    // Which container may be turned to the catch-all for which address:
    // decided before the NAT (a reset sent after it would come from the
    // catch-all's address, which the container ignores).
    let may_reach = elements(
        (rules.members.iter())
            .flat_map(|m| {
                (rules.served.iter())
                    .filter(move |(app, _, _)| m.app.as_deref() == Some(app.as_str()))
                    .map(move |(_, vip, _)| format!("{} . {vip}", m.address))
            })
            .collect::<BTreeSet<_>>(),
    );
    let vips = elements(
        (rules.served.iter())
            .map(|(_, vip, _)| vip.to_string())
            .collect::<BTreeSet<_>>(),
    );
    let listened = elements(
        (rules.served.iter())
            .map(|(_, vip, port)| format!("{vip} . {port}"))
            .collect::<BTreeSet<_>>(),
    );
    // Connections from this machine (components) are turned in `output`:
    // its priority is numeric there, `dstnat` is prerouting's name.
    let chains = format!(
        r#"
    set may_reach {{ type ipv4_addr . ipv4_addr;{may_reach} }}
    set vip_addrs {{ type ipv4_addr;{vips} }}
    set listened {{ type ipv4_addr . inet_service;{listened} }}
    chain catch_in {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname != "{bridge}" return
        ip daddr . tcp dport @listened return
        ip saddr . ip daddr @may_reach meta l4proto tcp dnat ip to {to}
    }}
    chain catch_out {{
        type nat hook output priority -100; policy accept;
        ip daddr . tcp dport @listened return
        ip daddr @vip_addrs meta l4proto tcp dnat ip to {to}
    }}"#
    );
    CatchAll {
        accept: format!(
            "\n        ip daddr {} tcp dport {} ct status dnat accept",
            to.ip(),
            to.port()
        ),
        chains,
    }
}

/// The transaction that removes both tables (and never fails for tables
/// that are not there).
pub fn removal(bridge: &str) -> String {
    let t = table_name(bridge);
    format!(
        "add table inet {t}\ndelete table inet {t}\nadd table bridge {t}\ndelete table bridge {t}\n"
    )
}

/// Runs `nft -f -` with `text`, bounded.
pub async fn apply(text: &str) -> Result<(), NftError> {
    let err = NftError;
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft");
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            err(format!(
                "cannot run nft ({e}): containers are isolated with nftables (Debian package nftables)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    let out = tokio::time::timeout(NFT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| err(format!("no answer within {NFT_TIMEOUT:?}")))?
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

/// The IPv4 resolvers in the host's `/etc/resolv.conf` that containers
/// use (loopback ones are left out of their copy).
pub fn resolvers() -> BTreeSet<Ipv4Addr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    (text.lines())
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(veth: &str, ip: [u8; 4], app: Option<&str>) -> Member {
        Member {
            veth: veth.into(),
            address: Ipv4Addr::from(ip),
            app: app.map(String::from),
        }
    }

    #[test]
    fn apps_get_numbers_and_their_members_and_listeners_share_them() {
        let rules = Rules {
            members: vec![
                member("av1", [10, 89, 5, 2], Some("shop")),
                member("av2", [10, 89, 5, 3], Some("blog")),
                member("av3", [10, 89, 5, 4], Some("shop")),
                member("av4", [10, 89, 5, 5], None),
            ],
            served: [("shop".to_string(), Ipv4Addr::new(10, 90, 1, 1), 80)].into(),
            resolvers: [Ipv4Addr::new(192, 0, 2, 53)].into(),
            cluster_ports: [(Ipv4Addr::new(192, 0, 2, 7), 7421)].into(),
            catch_all: None,
        };
        let text = render("atoll-1a2b3c4d", "10.89.5.0/24", &rules);
        // blog = 1, shop = 2 (name order), the unknown lease 3.
        for line in [
            r#"map port_app { type ifname : mark; elements = { "av1" : 2, "av2" : 1, "av3" : 2, "av4" : 3 }; }"#,
            r#"set members { type mark . ifname; elements = { 2 . "av1", 1 . "av2", 2 . "av3", 3 . "av4" }; }"#,
            r#"set port_ip { type ifname . ipv4_addr; elements = { "av1" . 10.89.5.2, "av2" . 10.89.5.3, "av3" . 10.89.5.4, "av4" . 10.89.5.5 }; }"#,
            "map app_of { type ipv4_addr : mark; elements = { 10.89.5.2 : 2, 10.89.5.3 : 1, 10.89.5.4 : 2, 10.89.5.5 : 3 }; }",
            "set vip_ports { type mark . ipv4_addr . inet_service; elements = { 2 . 10.90.1.1 . 80 }; }",
            "set host_dns { type ipv4_addr . inet_proto . inet_service; elements = { 192.0.2.53 . udp . 53, 192.0.2.53 . tcp . 53 }; }",
            "set cluster_ports { type ipv4_addr . inet_service; elements = { 192.0.2.7 . 7421 }; }",
            "ip saddr 10.89.5.0/24 oifname != \"atoll-1a2b3c4d\" masquerade",
            "ip daddr { 169.254.0.0/16, 10.90.0.0/16 } counter reject with icmpx admin-prohibited",
            "iifname != \"atoll-1a2b3c4d\" return",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            text.starts_with("add table inet atoll_1a2b3c4d\ndelete table inet atoll_1a2b3c4d\n")
        );
    }

    #[test]
    fn empty_sets_have_no_elements_clause() {
        let text = render("atoll-x", "10.89.5.0/24", &Rules::default());
        assert!(text.contains("set ports { type ifname; }"), "{text}");
        assert!(!text.contains("elements"), "{text}");
        assert_eq!(
            removal("atoll-x"),
            "add table inet atoll_x\ndelete table inet atoll_x\nadd table bridge atoll_x\ndelete table bridge atoll_x\n"
        );
    }

    #[test]
    fn every_other_port_of_a_served_address_is_turned_to_the_catch_all() {
        let rules = Rules {
            members: vec![member("av1", [10, 89, 5, 2], Some("shop"))],
            served: [
                ("shop".to_string(), Ipv4Addr::new(10, 90, 1, 1), 80),
                ("shop".to_string(), Ipv4Addr::new(10, 90, 1, 1), 8080),
                ("blog".to_string(), Ipv4Addr::new(10, 90, 2, 2), 80),
            ]
            .into(),
            catch_all: Some("10.89.5.1:41234".parse().unwrap()),
            ..Rules::default()
        };
        let text = render("atoll-1a2b3c4d", "10.89.5.0/24", &rules);
        for line in [
            // Its own app's address only.
            "set may_reach { type ipv4_addr . ipv4_addr; elements = { 10.89.5.2 . 10.90.1.1 }; }",
            "set listened { type ipv4_addr . inet_service; elements = { 10.90.1.1 . 80, 10.90.1.1 . 8080, 10.90.2.2 . 80 }; }",
            "ip saddr . ip daddr @may_reach meta l4proto tcp dnat ip to 10.89.5.1:41234",
            "ip daddr @vip_addrs meta l4proto tcp dnat ip to 10.89.5.1:41234",
            "ip daddr 10.89.5.1 tcp dport 41234 ct status dnat accept",
            "type nat hook output priority -100; policy accept;",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // The accept comes before the final reject of the input chain.
        let accept = text.find("ct status dnat accept").unwrap();
        let reject = text.find("meta l4proto tcp counter reject").unwrap();
        assert!(accept < reject);
        let without = Rules {
            catch_all: None,
            ..rules
        };
        assert!(!render("atoll-x", "10.89.5.0/24", &without).contains("catch_in"));
    }
}
