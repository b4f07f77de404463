//! A real Redis Cluster (3 primaries, 3 replicas) on free loopback ports, in
//! a temporary directory: `redis-server --cluster-enabled yes` six times,
//! then `redis-cli --cluster create ... --cluster-replicas 1`. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for, wait_pong};

pub struct RedisCluster {
    pub ports: Vec<u16>,
    /// With TLS: each node's TLS port (what the cluster announces), same
    /// order as `ports` (the plain ports stay open for the test's clients).
    pub tls_ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts six nodes and creates the cluster; waits until every node
    /// says `cluster_state:ok` and every replica is in sync.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(None)
    }

    /// With `tls` = (CA, server certificate, server key): every node also
    /// listens on a TLS port, and the cluster bus, replication and the
    /// announced ports are TLS (`tls-cluster yes`).
    pub fn start_with(tls: Option<(&str, &str, &str)>) -> RedisCluster {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("jcache-rc-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = RedisCluster {
            ports: Vec::new(),
            tls_ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for i in 0..6 {
            let port = if i == 0 { port } else { free_port() };
            let bus = free_port();
            let mut tls_args: Vec<String> = Vec::new();
            if let Some((ca, cert, key)) = tls {
                let tls_port = free_port();
                c.tls_ports.push(tls_port);
                tls_args = [
                    "--tls-port",
                    &tls_port.to_string(),
                    "--tls-cluster",
                    "yes",
                    "--tls-replication",
                    "yes",
                    "--tls-auth-clients",
                    "no",
                    "--tls-cert-file",
                    cert,
                    "--tls-key-file",
                    key,
                    "--tls-ca-cert-file",
                    ca,
                ]
                .map(String::from)
                .to_vec();
            }
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "1000"])
                .args(["--dir", c.dir.to_str().unwrap()])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--enable-debug-command", "yes"])
                .args(&tls_args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            c.ports.push(port);
            c.children.push(Some(child));
        }
        for &p in &c.ports {
            wait_pong(p, Duration::from_secs(20));
        }
        // With TLS, redis-cli speaks TLS: to the TLS ports.
        let create_ports = if tls.is_some() {
            &c.tls_ports
        } else {
            &c.ports
        };
        let addrs: Vec<String> = create_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let cli_tls: Vec<&str> = match tls {
            Some((ca, _, _)) => vec!["--tls", "--cacert", ca],
            None => Vec::new(),
        };
        // Bounded: redis-cli waits for the join without a limit of its own.
        let status = Command::new("timeout")
            .args(["120", "redis-cli"])
            .args(&cli_tls)
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        let ports = c.ports.clone();
        assert!(
            wait_for(Duration::from_secs(60), || ports.iter().all(|&p| {
                let info = info_of(p, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
            })),
            "the cluster never reached cluster_state:ok"
        );
        assert!(
            wait_for(Duration::from_secs(60), || {
                let replicas: Vec<u16> = ports
                    .iter()
                    .copied()
                    .filter(|&p| info_of(p, &["INFO", "replication"]).contains("role:slave"))
                    .collect();
                replicas.len() == 3
                    && replicas.iter().all(|&p| {
                        info_of(p, &["INFO", "replication"]).contains("master_link_status:up")
                    })
            }),
            "the replicas never synced"
        );
        c
    }

    /// `redis+cluster://` with two seeds, as `--tier` takes it
    /// (`rediss+cluster://` and the TLS ports with TLS).
    pub fn url(&self) -> String {
        match self.tls_ports.get(..2) {
            Some([a, b]) => format!("rediss+cluster://127.0.0.1:{a},127.0.0.1:{b}"),
            _ => format!(
                "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
                self.ports[0], self.ports[1]
            ),
        }
    }

    /// A client of the node on `port`.
    pub fn node(&self, port: u16) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let con = c
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        con
    }

    /// The port of the primary serving `key`'s slot, as a live node sees it
    /// (None if no live node answers or the slot is not served).
    pub fn primary_of(&self, key: &str) -> Option<u16> {
        for (i, &p) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{p}/"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            else {
                continue;
            };
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query(&mut c)
                .ok()?;
            let ranges: Vec<redis::Value> =
                redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).ok()?;
            for r in ranges {
                let redis::Value::Array(r) = r else { continue };
                let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b))) =
                    (r.first(), r.get(1))
                else {
                    continue;
                };
                if (*a..=*b).contains(&slot) {
                    if let Some(redis::Value::Array(n)) = r.get(2) {
                        if let Some(redis::Value::Int(port)) = n.get(1) {
                            // The plain port of a node that announces its TLS one.
                            let port = *port as u16;
                            return Some(match self.tls_ports.iter().position(|&t| t == port) {
                                Some(j) => self.ports[j],
                                None => port,
                            });
                        }
                    }
                }
            }
            return None;
        }
        None
    }

    /// A client of the primary serving `key`.
    pub fn owner(&self, key: &str) -> redis::Connection {
        self.node(self.primary_of(key).expect("no primary for the key"))
    }

    /// SIGKILL to the node on `port` (by its PID), and wait for the exit.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).unwrap();
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A command's reply on the node at `port` as text ("" if it fails).
fn info_of(port: u16, args: &[&str]) -> String {
    let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
    else {
        return String::new();
    };
    super::command(args).query(&mut c).unwrap_or_default()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
