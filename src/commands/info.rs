//! INFO's sections as Redis 7.0 names them (Server, Clients, Memory,
//! Persistence, Stats, Replication when no router owns it, CPU, Modules,
//! Latencystats, Cluster), with jcache's numbers. Fields with no meaning
//! here (forks, AOF, defrag, replicas of a Redis master) report what a
//! Redis that never did them reports; jcache's own fields keep their
//! names (`jcache_version`). `server_cmds::info_text` assembles them.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::connection::REDIS_VERSION;
use super::introspection::MemoryNumbers;
use super::Shared;

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// `uname -srm`, as Redis's `os` field.
fn os() -> String {
    // SAFETY: uname fills the struct we pass; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
        }
        let f = |p: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(p.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
    }
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (size.max(0) as u64)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The run id: 40 hex digits, fixed for the process.
pub fn run_id(srv: &Shared) -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ ((std::process::id() as u128) << 64)
            ^ srv.local_addr.port() as u128;
        let a = ahash::RandomState::with_seeds(seed as u64, (seed >> 64) as u64, 1, 2);
        let h = |i: u64| a.hash_one(i);
        format!("{:016x}{:016x}{:08x}", h(1), h(2), h(3) as u32)
    })
    .clone()
}

pub fn server(srv: &Shared, s: &mut String) {
    let uptime = srv.started.elapsed().as_secs();
    let hz = srv.config.get("hz").unwrap_or_else(|| "10".into());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let _ = write!(
        s,
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\njcache_version:{}\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{hz}\r\nconfigured_hz:{hz}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:\r\nio_threads_active:0\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        os(),
        std::process::id(),
        run_id(srv),
        srv.local_addr.port(),
        now.as_micros(),
        uptime / 86400,
        now.as_secs() & ((1 << 24) - 1),
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
}

pub fn clients(srv: &Shared, s: &mut String) {
    let (max_in, max_out) = srv.clients.max_buffers();
    let _ = write!(
        s,
        "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{max_in}\r\nclient_recent_max_output_buffer:{max_out}\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n\r\n",
        srv.connected.load(Ordering::Relaxed),
        srv.config.maxclients.load(Ordering::Relaxed),
        srv.blocking.blocked_clients() + srv.pause.waiting.load(Ordering::Relaxed),
    );
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// `used_memory` is the keyspace's bytes (what `maxmemory` bounds);
/// clients and scripts are `used_memory_overhead`.
pub fn memory(srv: &Shared, keys: u64, s: &mut String) {
    let m = MemoryNumbers::read(srv, keys);
    let a = m.alloc;
    let used = m.used;
    let overhead = m.clients + m.lua + m.functions;
    let max = srv.db.maxmemory.load(Ordering::Relaxed);
    let sys = total_system_memory();
    let _ = write!(
        s,
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{overhead}\r\nused_memory_startup:0\r\nused_memory_dataset:{used}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{sys}\r\ntotal_system_memory_human:{}\r\n",
        human(used),
        m.rss,
        human(m.rss),
        m.peak,
        human(m.peak),
        ratio(used * 100, m.peak),
        ratio(used * 100, used + overhead),
        a.allocated,
        a.active,
        a.resident,
        human(sys),
    );
    // Read without the VM's lock: a script calling INFO holds it.
    let c = *srv.scripting.counts.lock();
    let (eval, funcs) = (c.vm_eval, c.vm_functions);
    let sources = *srv.memory_sources.lock();
    let _ = write!(
        s,
        "used_memory_lua:{eval}\r\nused_memory_vm_eval:{eval}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:{funcs}\r\nused_memory_vm_total:{}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\n",
        human(eval as u64),
        c.bodies,
        c.scripts,
        c.functions,
        c.libraries,
        eval + funcs,
        human((eval + funcs) as u64),
        c.codes,
        c.bodies + c.codes,
        human((c.bodies + c.codes) as u64),
    );
    let _ = write!(
        s,
        "maxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmaxmemory_source:{}\r\nmaxmemory_policy_source:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:{}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n\r\n",
        human(max),
        srv.db.policy().name(),
        sources[0].name(),
        sources[1].name(),
        ratio(a.active, a.allocated),
        a.active as i64 - a.allocated as i64,
        ratio(a.resident, a.active),
        a.resident as i64 - a.active as i64,
        ratio(m.rss, a.resident),
        m.rss as i64 - a.resident as i64,
        if used > 0 { ratio(m.rss, used) } else { 1.0 },
        m.rss as i64 - used as i64,
        m.clients,
    );
}

pub fn persistence(srv: &Shared, s: &mut String) {
    let started = unix_secs().saturating_sub(srv.started.elapsed().as_secs());
    let _ = write!(
        s,
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{started}\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n\r\n",
        srv.db.stats.changes.get(),
    );
}

pub fn stats(srv: &Shared, s: &mut String) {
    let st = &srv.stats;
    let es = &srv.db.stats;
    let (ops, kin, kout) = {
        let i = st.instantaneous.lock();
        (i.rate(0), i.rate(1) / 1024.0, i.rate(2) / 1024.0)
    };
    let (channels, patterns, shard) = srv.pubsub.counts();
    let _ = write!(
        s,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{kin:.2}\r\ninstantaneous_output_kbps:{kout:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:{shard}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n\r\n",
        st.connections_received.load(Ordering::Relaxed),
        st.commands.get(),
        ops.round() as u64,
        st.net_input_bytes.get(),
        st.net_output_bytes.get(),
        st.rejected_connections.load(Ordering::Relaxed),
        es.expired_keys.load(Ordering::Relaxed),
        st.expire_cycle_ms.load(Ordering::Relaxed),
        es.evicted_keys.load(Ordering::Relaxed),
        es.keyspace_hits.get(),
        es.keyspace_misses.get(),
        st.errors.load(Ordering::Relaxed),
        st.reads.get(),
        st.writes.get(),
    );
}

/// `# Replication` of a node with no router owning it: a master without
/// replicas.
pub fn replication(srv: &Shared, s: &mut String) {
    let _ = write!(
        s,
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n\r\n",
        run_id(srv),
        srv.config.get("repl-backlog-size").unwrap_or_else(|| "1048576".into()),
    );
}

fn cpu_times(who: libc::c_int) -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

/// `# CPU`; the "main thread" is the thread answering INFO.
pub fn cpu(s: &mut String) {
    let (sys, user) = cpu_times(libc::RUSAGE_SELF);
    let (csys, cuser) = cpu_times(libc::RUSAGE_CHILDREN);
    let (tsys, tuser) = cpu_times(libc::RUSAGE_THREAD);
    let _ = write!(
        s,
        "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{csys:.6}\r\nused_cpu_user_children:{cuser:.6}\r\nused_cpu_sys_main_thread:{tsys:.6}\r\nused_cpu_user_main_thread:{tuser:.6}\r\n\r\n"
    );
}

/// `# Modules`: none.
pub fn modules(s: &mut String) {
    s.push_str("# Modules\r\n\r\n");
}

/// `# Cluster`: jcache is never a Redis Cluster node (its cluster mode is
/// one replicated keyspace; see `CLUSTER`'s answers).
pub fn cluster(s: &mut String) {
    s.push_str("# Cluster\r\ncluster_enabled:0\r\n\r\n");
}
