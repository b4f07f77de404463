//! Scripting state every connection shares: the Lua VM (the EVAL script
//! cache and the FUNCTION libraries) and the one script that may be running.
//!
//! A script runs with every shard locked, where its command runs or on
//! the script thread (one OS thread outside the runtime,
//! [`Scripting::submit`], for the scripts of a pipeline). A long one on a
//! worker gives the worker's other tasks to another thread (see
//! `commands::scripting`), so the runtime's workers go on serving other
//! connections: until `busy-reply-threshold` their commands (other scripts
//! too) wait for it to end ([`Scripting::wait`]), after it they get
//! `-BUSY`, and SCRIPT KILL / FUNCTION KILL / SHUTDOWN reach the script
//! through flags its instruction hook reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::engine::ScriptOp;
use crate::script::Vm;

/// The script being run.
#[derive(Clone, Debug)]
pub struct Running {
    /// EVAL family (true) or FCALL (false): which KILL stops it and which
    /// BUSY text others get.
    pub eval: bool,
    /// The function's name (FCALL) or the script's SHA1 (EVAL).
    pub name: String,
    /// The command as sent (FUNCTION STATS shows it).
    pub command: Vec<bytes::Bytes>,
    pub started: Instant,
    pub client_id: u64,
}

pub struct Scripting {
    /// The VM: locked for the whole run of a script, and by the commands
    /// that change the cache or the libraries.
    pub vm: Mutex<Vm>,
    running: Mutex<Option<Running>>,
    /// Whether a script runs long (subscribers wait for `false`).
    busy: watch::Sender<bool>,
    /// The same, read by every command: an atomic, not the channel's read
    /// lock (whose count every worker would bounce between cores).
    busy_now: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked the running script to stop.
    kill: AtomicBool,
    /// The running script called a write command (it can no longer be killed).
    wrote: AtomicBool,
    /// Scripts cached and libraries/functions loaded, for INFO and
    /// FUNCTION STATS without taking the VM's lock.
    pub counts: Mutex<Counts>,
    /// The script thread's queue, started with the first script.
    thread: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

/// Work for the script thread: run one script command and send its reply.
pub type Job = Box<dyn FnOnce() + Send>;

/// Sizes of the script cache and the function libraries.
#[derive(Clone, Copy, Default, Debug)]
pub struct Counts {
    pub scripts: usize,
    pub libraries: usize,
    pub functions: usize,
    /// Bytes the EVAL and the FUNCTION Lua states use (as of the last
    /// change or run).
    pub vm_eval: usize,
    pub vm_functions: usize,
    /// Bytes of the script bodies and library codes kept.
    pub bodies: usize,
    pub codes: usize,
}

impl Default for Scripting {
    fn default() -> Self {
        let s = Scripting {
            vm: Mutex::new(Vm::new()),
            running: Mutex::new(None),
            busy: watch::channel(false).0,
            busy_now: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            counts: Mutex::new(Counts::default()),
            thread: Mutex::new(None),
        };
        s.recount(&s.vm.lock());
        s
    }
}

/// Why KILL could not stop the running script (Redis's replies).
#[derive(Debug, PartialEq, Eq)]
pub enum KillError {
    NotBusy,
    Unkillable,
    /// SCRIPT KILL of a function, FUNCTION KILL of an EVAL: the BUSY text
    /// of the running kind.
    WrongKind(&'static str),
}

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Scripting {
    /// Runs `job` on the script thread, after the jobs queued before it.
    /// The thread is started on first use and ends when `Scripting` is
    /// dropped (its queue closes). A job that panics is dropped (its reply
    /// channel with it); the thread goes on with the next.
    pub fn submit(&self, job: Job) {
        let mut thread = self.thread.lock();
        let tx = thread.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("jcache-script".into())
                .spawn(move || {
                    for job in rx {
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        if ran.is_err() {
                            tracing::error!("a script command panicked; its client gets an error");
                        }
                    }
                })
                .expect("start the script thread");
            tx
        });
        // The receiver lives as long as the thread, which never returns
        // while a sender exists.
        let _ = tx.send(job);
    }

    /// A script starts. The caller holds every shard and the VM, so at most
    /// one script runs. Until it runs long it is one command holding every
    /// shard, as EXEC is, and nobody can see it run (as in Redis, where
    /// nothing else runs then): SCRIPT KILL finds no script, FUNCTION STATS
    /// shows none.
    pub fn begin(&self) {
        self.kill.store(false, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
    }

    /// The running script runs long: it is published as `run` (SCRIPT
    /// KILL, FUNCTION STATS), and commands wait for its end, then get BUSY
    /// once it ran past the threshold.
    pub fn mark_long(&self, run: Running) {
        *self.running.lock() = Some(run);
        self.set_busy(true);
    }

    /// The running script ended.
    pub fn end(&self) {
        self.kill.store(false, Ordering::Relaxed);
        // Only the script that holds the VM marks itself long, so a short
        // one has nothing to clear (and takes no lock for it).
        if self.busy_now.load(Ordering::Acquire) {
            *self.running.lock() = None;
            self.set_busy(false);
        }
    }

    /// Sets the busy flag, waking waiters only if there are any: a wake-up
    /// nobody listens for cost about 4% of a short script. A waiter
    /// ([`Scripting::wait`]) subscribes before it reads the flag under the
    /// value's read lock, and the count is read here under the write lock,
    /// so a waiter that saw the old value is counted and woken.
    fn set_busy(&self, on: bool) {
        self.busy_now.store(on, Ordering::Release);
        self.busy.send_if_modified(|busy| {
            let changed = std::mem::replace(busy, on) != on;
            changed && self.busy.receiver_count() > 0
        });
    }

    pub fn is_busy(&self) -> bool {
        self.busy_now.load(Ordering::Acquire)
    }

    pub fn running(&self) -> Option<Running> {
        self.running.lock().clone()
    }

    /// The running script called a write command.
    pub fn note_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    pub fn killed(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL.
    pub fn kill(&self, eval: bool) -> Result<(), KillError> {
        let running = self.running.lock();
        let Some(run) = running.as_ref() else {
            return Err(KillError::NotBusy);
        };
        if self.wrote.load(Ordering::Relaxed) {
            return Err(KillError::Unkillable);
        }
        if run.eval != eval {
            return Err(KillError::WrongKind(if run.eval {
                BUSY_EVAL
            } else {
                BUSY_FUNCTION
            }));
        }
        self.kill.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Applies a replicated change (from the master's stream or snapshot).
    /// Idempotent: a script already cached, a library loaded again (it
    /// replaces), a library already gone change nothing more.
    pub fn apply(&self, op: &ScriptOp) {
        if let ScriptOp::Load(body) = op {
            if let Err(e) = self.load_script(body.clone()) {
                tracing::warn!(error = %e, "replicated script does not compile here");
            }
            return;
        }
        let mut vm = self.vm.lock();
        match op {
            ScriptOp::Load(_) => unreachable!("loaded above"),
            ScriptOp::Flush => vm.flush_scripts(),
            ScriptOp::LoadLibrary(code) => {
                if let Err(e) = vm.load_library(code.clone(), true) {
                    tracing::warn!(error = %e, "replicated library does not load here");
                }
            }
            ScriptOp::DeleteLibrary(name) => {
                let _ = vm.delete_library(&String::from_utf8_lossy(name));
            }
            ScriptOp::FlushLibraries => vm.flush_libraries(),
        }
        self.recount(&vm);
    }

    /// The scripting state as changes that rebuild it (a full sync's first
    /// chunk): flush both, then every script and library.
    pub fn snapshot(&self) -> Vec<ScriptOp> {
        let vm = self.vm.lock();
        let mut ops = vec![ScriptOp::Flush, ScriptOp::FlushLibraries];
        ops.extend(vm.scripts().into_iter().map(ScriptOp::Load));
        ops.extend(
            vm.libraries()
                .into_iter()
                .map(|l| ScriptOp::LoadLibrary(l.code)),
        );
        ops
    }

    /// Caches a script body if it is not (tiered mode keeps the bodies of
    /// the scripts it forwards, to load them upstream again if needed).
    pub fn cache_script(&self, body: bytes::Bytes) {
        let _ = self.load_script(body);
    }

    /// Caches a script unless it is: its SHA1 and whether it was new, or
    /// the compile error (Redis's text).
    pub fn load_script(&self, body: bytes::Bytes) -> Result<(String, bool), String> {
        let mut vm = self.vm.lock();
        let sha = Vm::sha1hex(&body);
        if vm.script(&sha).is_some() {
            return Ok((sha, false));
        }
        vm.load_script(body)?;
        self.recount(&vm);
        Ok((sha, true))
    }

    /// The body of a cached script (`sha` in either case).
    pub fn script_body(&self, sha: &[u8]) -> Option<bytes::Bytes> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.vm.lock().script(&sha).map(|(b, _)| b)
    }

    /// SCRIPT FLUSH of the local cache.
    pub fn flush_scripts(&self) {
        let mut vm = self.vm.lock();
        vm.flush_scripts();
        self.recount(&vm);
    }

    /// After a run: the Lua states' memory (the counts did not change).
    pub fn note_memory(&self, vm: &Vm) {
        let (eval, funcs) = (vm.memory(), vm.functions_memory());
        let mut c = self.counts.lock();
        c.vm_eval = eval;
        c.vm_functions = funcs;
    }

    /// Updates the counts read without the VM's lock.
    pub fn recount(&self, vm: &Vm) {
        let libs = vm.libraries();
        let mut c = self.counts.lock();
        c.scripts = vm.script_count();
        c.libraries = libs.len();
        c.functions = libs.iter().map(|l| l.functions.len()).sum();
        c.vm_eval = vm.memory();
        c.vm_functions = vm.functions_memory();
        c.bodies = vm.script_bytes();
        c.codes = libs.iter().map(|l| l.code.len()).sum();
    }

    /// While a script runs: the BUSY error a command gets once the script
    /// ran for `threshold`, or None while it is younger (the command waits).
    pub fn busy_error(&self, threshold: Duration) -> Option<&'static str> {
        let running = self.running.lock();
        let run = running.as_ref()?;
        (run.started.elapsed() >= threshold).then_some(if run.eval {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        })
    }

    /// How long until the running script reaches `threshold` (the whole
    /// threshold if none runs; zero if it already did).
    pub fn until_busy(&self, threshold: Duration) -> Duration {
        match self.running.lock().as_ref() {
            Some(run) => threshold.saturating_sub(run.started.elapsed()),
            None => threshold,
        }
    }

    /// Resolves when no script runs any more, or when the running one has
    /// run for `threshold` (then commands get BUSY instead of waiting).
    pub fn wait(
        &self,
        threshold: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.busy.subscribe();
        let deadline = self
            .running
            .lock()
            .as_ref()
            .map(|r| r.started + threshold)
            .unwrap_or_else(Instant::now);
        async move {
            let ended = rx.wait_for(|busy| !busy);
            let _ = tokio::time::timeout_at(deadline.into(), ended).await;
        }
    }
}
