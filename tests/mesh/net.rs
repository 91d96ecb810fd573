//! A network of its own for a test: a bridge in the root namespace and
//! one network namespace per host, each joined to the bridge by a veth
//! pair and given its own address. Everything is removed on drop, also
//! when the test fails.

use std::process::Command;

pub struct TestNet {
    bridge: String,
    pub namespaces: Vec<String>,
    /// The bridge's address (NATS and the server listen there).
    pub gateway: String,
    /// One address per namespace, in order.
    pub addresses: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestNet {
    /// `hosts` namespaces on `10.<net>.0.0/24` (the bridge is `.1`).
    pub fn new(net: u8, hosts: usize) -> TestNet {
        let tag = std::process::id() % 100_000;
        let bridge = format!("tb{tag}");
        let mut t = TestNet {
            bridge: bridge.clone(),
            namespaces: Vec::new(),
            gateway: format!("10.{net}.0.1"),
            addresses: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("10.{net}.0.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 0..hosts {
            let ns = format!("tn{tag}-{i}");
            let veth = format!("tv{tag}-{i}");
            let address = format!("10.{net}.0.{}", i + 2);
            ip(&["netns", "add", &ns]);
            t.namespaces.push(ns.clone());
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ip(&["link", "set", &veth, "master", &bridge, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            t.addresses.push(address);
        }
        t
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // The veth pairs go with their namespaces.
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}
