//! The cluster harness: a real etcd (Debian's etcd-server) and real jcache
//! nodes on loopback, with kill -9, restart, stable-master and digest waits.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, info_field, wait_for, Server};

/// The lease TTL nodes get unless a test passes `--cluster-lease-ttl`.
pub const TTL_SECS: u64 = 2;

pub struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    pub url: String,
}

impl Etcd {
    /// Starts etcd on two fresh ports; if it exits before it listens (a port
    /// taken between our pick and its bind), it is started again on others.
    pub fn start() -> Etcd {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Etcd::try_start() {
                Ok(e) => return e,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start; its log:\n{last_log}");
    }

    fn try_start() -> Result<Etcd, String> {
        let cport = free_port();
        let mut pport = free_port();
        while pport == cport {
            pport = free_port();
        }
        let dir = std::env::temp_dir().join(format!("jcache-etcd-{}-{cport}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let log_path = dir.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("etcd log");
        let url = format!("http://127.0.0.1:{cport}");
        let peer = format!("http://127.0.0.1:{pport}");
        let child = Command::new("etcd")
            .args([
                "--name",
                "t",
                "--data-dir",
                dir.to_str().unwrap(),
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("t={peer}"),
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd (apt-get install etcd-server)");
        let mut e = Etcd { child, dir, url };
        // The log is only read when etcd failed; it goes away either way.
        let take_log = || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = std::fs::remove_file(&log_path);
            log
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", cport)).is_ok() {
                take_log();
                return Ok(e);
            }
            if let Ok(Some(status)) = e.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", take_log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "not listening on {cport} after 30 s:\n{}",
            take_log()
        ))
    }
}

impl Etcd {
    /// The etcd process id (for SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Node {
    pub id: String,
    pub server: Option<Server>,
    pub port: u16,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub etcd: Etcd,
    pub name: String,
    /// The extra arguments every node was started with (restarts reuse them).
    pub extra: Vec<String>,
}

pub fn start_node(etcd: &Etcd, name: &str, id: &str) -> Server {
    start_node_with(etcd, name, id, &[])
}

pub fn start_node_with(etcd: &Etcd, name: &str, id: &str, extra: &[&str]) -> Server {
    let gport = free_port().to_string();
    let ttl = format!("{TTL_SECS}s");
    let mut args = vec![
        "--cluster-etcd",
        &etcd.url,
        "--cluster-name",
        name,
        "--node-id",
        id,
        "--cluster-port",
        &gport,
    ];
    if !extra.contains(&"--cluster-secret") && !extra.contains(&"--cluster-insecure") {
        args.extend_from_slice(&["--cluster-secret", "test-secret"]);
    }
    if !extra.contains(&"--cluster-lease-ttl") {
        args.extend_from_slice(&["--cluster-lease-ttl", &ttl]);
    }
    args.extend_from_slice(extra);
    Server::start(&args)
}

pub fn con(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = c
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    con
}

/// A connection, or None if the node does not accept one within 2 s.
pub fn con_try(port: u16) -> Option<redis::Connection> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = c.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
    con.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    Some(con)
}

pub fn info(port: u16) -> String {
    let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return String::new();
    };
    let Ok(mut con) = c.get_connection_with_timeout(Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
    redis::cmd("INFO")
        .arg("replication")
        .query::<String>(&mut con)
        .unwrap_or_default()
}

pub fn digest(port: u16) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query::<String>(&mut con(port))
        .unwrap_or_default()
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let etcd = Etcd::start();
        let name = format!("t{}", free_port());
        let nodes = (0..n)
            .map(|i| {
                let id = format!("n{i}");
                let server = start_node_with(&etcd, &name, &id, extra);
                Node {
                    id,
                    port: server.port,
                    server: Some(server),
                }
            })
            .collect();
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let c = Cluster {
            nodes,
            etcd,
            name,
            extra,
        };
        c.wait_stable(Duration::from_secs(20));
        c
    }

    pub fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.server.is_some())
    }

    /// Waits for exactly one master whose followers (every other live node) are linked.
    pub fn wait_stable(&self, within: Duration) -> usize {
        let mut master = None;
        let ok = wait_for(within, || {
            let infos: Vec<(usize, String)> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.server.is_some())
                .map(|(i, n)| (i, info(n.port)))
                .collect();
            let masters: Vec<usize> = infos
                .iter()
                .filter(|(_, s)| info_field(s, "role").as_deref() == Some("master"))
                .map(|(i, _)| *i)
                .collect();
            if masters.len() != 1 {
                return false;
            }
            let m = masters[0];
            let mid = &self.nodes[m].id;
            let linked = infos.iter().all(|(i, s)| {
                *i == m
                    || (info_field(s, "master_link_status").as_deref() == Some("up")
                        && info_field(s, "master_node_id").as_deref() == Some(mid.as_str()))
            });
            let followers = info_field(
                &infos.iter().find(|(i, _)| *i == m).unwrap().1,
                "connected_slaves",
            )
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
            if linked && followers == infos.len() - 1 {
                master = Some(m);
                true
            } else {
                false
            }
        });
        assert!(ok, "cluster did not stabilise within {within:?}");
        master.unwrap()
    }

    pub fn master(&self) -> usize {
        self.wait_stable(Duration::from_secs(20))
    }

    pub fn followers(&self, m: usize) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != m && n.server.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Polls until every live node has the same keyspace digest; returns it.
    pub fn wait_converged(&self, within: Duration) -> String {
        let mut last = Vec::new();
        let ok = wait_for(within, || {
            last = self.live().map(|n| digest(n.port)).collect();
            last.iter().all(|d| !d.is_empty() && *d == last[0])
        });
        assert!(ok, "nodes did not converge: {last:?}");
        last[0].clone()
    }

    pub fn kill9(&mut self, i: usize) {
        let s = self.nodes[i].server.take().unwrap();
        unsafe { libc::kill(s.pid() as i32, libc::SIGKILL) };
        drop(s);
    }

    pub fn restart(&mut self, i: usize) {
        let extra: Vec<&str> = self.extra.iter().map(|s| s.as_str()).collect();
        let s = start_node_with(&self.etcd, &self.name, &self.nodes[i].id, &extra);
        self.nodes[i].port = s.port;
        self.nodes[i].server = Some(s);
    }
}
