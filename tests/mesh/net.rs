//! A network of its own for a test: a bridge in the root namespace and
//! one network namespace per host, each joined to the bridge by a veth
//! pair and given its own address. Everything is removed on drop, also
//! when the test fails.

use std::process::Command;

pub struct TestNet {
    bridge: String,
    /// The root namespace's end of each host's veth pair.
    veths: Vec<String>,
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
        // Unique per network, also among the tests of one process: a
        // namespace's veth may outlive it for a moment after it is deleted.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = (std::process::id() % 10_000) * 10 + seq % 10;
        let bridge = format!("tb{tag}");
        let mut t = TestNet {
            bridge: bridge.clone(),
            veths: Vec::new(),
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
            t.veths.push(veth.clone());
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

#[allow(dead_code, reason = "not every test cuts links")]
impl TestNet {
    /// Cuts host `i`'s link: its veth goes down, as an unplugged cable.
    pub fn cut(&self, i: usize) {
        ip(&["link", "set", &self.veths[i], "down"]);
    }

    /// Plugs host `i`'s link back in.
    pub fn heal(&self, i: usize) {
        ip(&["link", "set", &self.veths[i], "up"]);
    }

    /// The HTTP status of `GET url`, asked from inside host `i`'s
    /// namespace (curl, bounded to 10 s); 0 when nothing answered.
    pub fn get_from(&self, i: usize, url: &str) -> u16 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespaces[i],
                "curl",
                "-s",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_code}", "--max-time", "10", url])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // The veth pairs go with their namespaces, but only once nothing
        // holds a namespace any more: remove them now.
        for veth in &self.veths {
            let _ = Command::new("ip").args(["link", "del", veth]).status();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}
