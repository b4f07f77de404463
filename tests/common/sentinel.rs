//! A real Redis Sentinel (Debian's `redis-sentinel`) on a free loopback
//! port, watching one primary; killed on drop (its directory removed).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for, wait_pong};

pub struct Sentinel {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Sentinel {
    /// Monitors the primary at 127.0.0.1:`primary_port` as `master`, with
    /// a quorum of 1 (one sentinel may fail over alone).
    pub fn start(master: &str, primary_port: u16) -> Sentinel {
        Sentinel::start_with(master, primary_port, "")
    }

    /// Like [`Sentinel::start`], with more lines for its configuration file
    /// (e.g. `tls-port`).
    pub fn start_with(master: &str, primary_port: u16, extra_conf: &str) -> Sentinel {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("jcache-sentinel-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {master} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {master} 2000\n\
                 sentinel failover-timeout {master} 10000\n{extra_conf}\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-sentinel");
        let sentinel = Sentinel { port, child, dir };
        wait_pong(port, Duration::from_secs(20));
        sentinel
    }

    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let con = c
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        con
    }

    /// The primary of `master` as this sentinel sees it (`host:port`).
    pub fn primary(&self, master: &str) -> Option<String> {
        let v: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query(&mut self.client())
            .ok()?;
        v.map(|(h, p)| format!("{h}:{p}"))
    }

    /// Waits (up to `within`) until the sentinel lists `n` healthy replicas
    /// of `master` (a failover needs one).
    pub fn wait_replicas(&self, master: &str, n: usize, within: Duration) -> bool {
        wait_for(within, || {
            let replicas: redis::RedisResult<Vec<std::collections::HashMap<String, String>>> =
                redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(master)
                    .query(&mut self.client());
            replicas.is_ok_and(|r| {
                r.iter()
                    .filter(|f| f.get("flags").map(String::as_str) == Some("slave"))
                    .count()
                    >= n
            })
        })
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
