//! A real `redis-server` on a free loopback port, for the upstream tier and
//! for differential tests: restartable on the same port, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, wait_pong};

pub struct Upstream {
    pub port: u16,
    child: Option<Child>,
    /// Where the AOF lives, for a server started with `start_aof`.
    aof_dir: Option<PathBuf>,
    extra: Vec<String>,
}

impl Upstream {
    /// No persistence (no RDB, no AOF); DEBUG allowed.
    pub fn start() -> Upstream {
        Upstream::start_with(&[])
    }

    /// With extra redis-server arguments (e.g. `--requirepass`).
    pub fn start_with(extra: &[&str]) -> Upstream {
        let mut u = Upstream {
            port: free_port(),
            child: None,
            aof_dir: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        u.spawn();
        u
    }

    /// With an AOF (fsync every second) in a fresh temporary directory named
    /// after `name`, so that `stop` then `spawn` keeps the data.
    pub fn start_aof(name: &str) -> Upstream {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("{name}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut u = Upstream {
            port,
            child: None,
            aof_dir: Some(dir),
            extra: Vec::new(),
        };
        u.spawn();
        u
    }

    /// Starts the process (again) on the same port and waits for PONG (not
    /// -LOADING while an AOF is read back).
    pub fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--enable-debug-command", "yes"]);
        match &self.aof_dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "everysec"])
                .args(["--dir", dir.to_str().unwrap()]),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_pong(self.port, Duration::from_secs(20));
    }

    /// SIGKILL, and wait for the exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (Redis flushes its AOF on shutdown) and wait for the exit
    /// (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis://127.0.0.1:<port>`, as `--tier` takes it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client from the `redis` crate, without timeouts.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A client that gives up connecting after 5 s and reading after 10 s.
    pub fn client_with_timeouts(&self) -> redis::Connection {
        let c = redis::Client::open(format!("{}/", self.url())).unwrap();
        let con = c
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        con
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.aof_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
