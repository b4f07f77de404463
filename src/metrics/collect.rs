//! One scrape: the numbers INFO shows, read when Prometheus asks and
//! encoded with `prometheus-client` (metric names are `jcache_` + the names
//! below; counters get `_total`).
//!
//! Sources, each the one INFO reads: commandstats and the per-command
//! latency histograms (`commands::stats`), the server and engine counters
//! (`Shared`), and the router's INFO text for tiers and cluster
//! replication ([`super::info_text`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::info_text::{fields, number, pairs};
use crate::commands::stats::{self, hdr};
use crate::commands::Shared;

type Labels = Vec<(&'static str, String)>;
type Fmt = Result<(), std::fmt::Error>;

/// Upper bounds (seconds) of the command latency histogram's buckets.
const LATENCY_BOUNDS: [f64; 16] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0,
];

/// The collector registered on the endpoint's registry.
pub struct Scrape {
    shared: Arc<Shared>,
}

impl Scrape {
    pub fn new(shared: Arc<Shared>) -> Scrape {
        Scrape { shared }
    }
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Fmt {
        let srv = &self.shared;
        commands(&mut enc)?;
        errors(srv, &mut enc)?;
        keyspace(srv, &mut enc)?;
        memory(srv, &mut enc)?;
        clients(srv, &mut enc)?;
        let router = srv.router.get();
        let mut tiers_text = String::new();
        if let Some(r) = router {
            r.info(&|s: &str| s == "tiers", &mut tiers_text);
        }
        tiers(&tiers_text, &mut enc)?;
        let repl = router.and_then(|r| r.info_replication());
        replication(repl.as_deref(), &mut enc)
    }
}

/// One unlabelled metric.
fn one(enc: &mut DescriptorEncoder, name: &str, help: &str, m: impl EncodeMetric) -> Fmt {
    let me = enc.encode_descriptor(name, help, None, m.metric_type())?;
    m.encode(me)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    one(enc, name, help, ConstCounter::new(v))
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Fmt {
    one(enc, name, help, ConstGauge::new(v))
}

/// A labelled family; nothing is written when it has no rows.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Vec<(L, M)>,
) -> Fmt {
    if rows.is_empty() {
        return Ok(());
    }
    let mut me = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, m) in rows {
        m.encode(me.encode_family(&labels)?)?;
    }
    Ok(())
}

fn cmd_label(name: &str) -> Labels {
    vec![("cmd", name.to_string())]
}

/// Calls, errors, rejections and latency per command (INFO commandstats,
/// LATENCY HISTOGRAM).
fn commands(enc: &mut DescriptorEncoder) -> Fmt {
    let counts = stats::command_counts();
    let rows = |f: fn(&stats::CommandCounts) -> u64| {
        counts
            .iter()
            .map(|c| (cmd_label(c.name), ConstCounter::new(f(c))))
            .collect::<Vec<_>>()
    };
    let help = "Calls per command (a subcommand is `cmd|sub`)";
    family(
        enc,
        "commands",
        help,
        MetricType::Counter,
        rows(|c| c.calls),
    )?;
    let help = "Calls that answered with an error";
    family(
        enc,
        "command_errors",
        help,
        MetricType::Counter,
        rows(|c| c.failed),
    )?;
    let help = "Calls refused before running (NOAUTH, OOM, ...)";
    let rejected = rows(|c| c.rejected);
    family(
        enc,
        "command_rejections",
        help,
        MetricType::Counter,
        rejected,
    )?;
    let usec: HashMap<&str, u64> = counts.iter().map(|c| (c.name, c.usec)).collect();
    let hists = stats::histograms();
    if hists.is_empty() {
        return Ok(());
    }
    let mut me = enc.encode_descriptor(
        "command_duration_seconds",
        "Time commands ran (kept while latency-tracking is yes; 2 significant digits)",
        None,
        MetricType::Histogram,
    )?;
    for (name, counts, total) in hists {
        let buckets = latency_buckets(&counts);
        let sum = usec.get(name.as_str()).copied().unwrap_or(0) as f64 / 1e6;
        me.encode_family(&cmd_label(&name))?
            .encode_histogram::<Labels>(sum, total, &buckets, None)?;
    }
    Ok(())
}

/// Folds hdr counts (ns) into [`LATENCY_BOUNDS`]: a bucket's calls go to
/// the first bound at or above the lowest value the hdr bucket holds.
fn latency_buckets(counts: &[u64]) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = LATENCY_BOUNDS.iter().map(|b| (*b, 0)).collect();
    out.push((f64::INFINITY, 0));
    for (i, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
        let lowest = if i == 0 { 0 } else { hdr::highest(i - 1) + 1 };
        let secs = lowest as f64 / 1e9;
        let at = LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        out[at].1 += n;
    }
    out
}

/// Error replies by code (INFO errorstats).
fn errors(srv: &Shared, enc: &mut DescriptorEncoder) -> Fmt {
    let rows: Vec<(Labels, ConstCounter)> = srv
        .stats
        .errorstats
        .lock()
        .iter()
        .map(|(code, n)| (vec![("code", code.to_string())], ConstCounter::new(*n)))
        .collect();
    family(
        enc,
        "error_replies",
        "Error replies by error code",
        MetricType::Counter,
        rows,
    )
}

/// Hits, misses, keys per database, expirations and evictions.
fn keyspace(srv: &Shared, enc: &mut DescriptorEncoder) -> Fmt {
    let es = &srv.db.stats;
    let help = "Key lookups that found the key (INFO keyspace_hits)";
    counter(enc, "keyspace_hits", help, es.keyspace_hits.get())?;
    let help = "Key lookups that did not (INFO keyspace_misses)";
    counter(enc, "keyspace_misses", help, es.keyspace_misses.get())?;
    let help = "Keys expired (INFO expired_keys)";
    counter(
        enc,
        "expired_keys",
        help,
        es.expired_keys.load(Ordering::Relaxed),
    )?;
    let help = "Keys evicted under maxmemory (INFO evicted_keys)";
    counter(
        enc,
        "evicted_keys",
        help,
        es.evicted_keys.load(Ordering::Relaxed),
    )?;
    let counts = srv.db.key_counts();
    let db = |d: usize| vec![("db", d.to_string())];
    let keys = counts
        .iter()
        .map(|(d, k, _)| (db(*d), ConstGauge::new(*k as i64)))
        .collect();
    family(enc, "keys", "Keys per database", MetricType::Gauge, keys)?;
    let expires = counts
        .iter()
        .map(|(d, _, e)| (db(*d), ConstGauge::new(*e as i64)))
        .collect();
    let help = "Keys with a time to live per database";
    family(enc, "keys_expiring", help, MetricType::Gauge, expires)
}

/// Used memory, the limit, its policy and where they came from.
fn memory(srv: &Shared, enc: &mut DescriptorEncoder) -> Fmt {
    let used = srv.db.used_memory() as f64;
    let help = "Bytes the keyspace holds, what maxmemory bounds (INFO used_memory)";
    gauge(enc, "used_memory_bytes", help, used)?;
    let rss = crate::commands::server_cmds::rss_bytes() as f64;
    gauge(
        enc,
        "resident_memory_bytes",
        "Resident set size of the process",
        rss,
    )?;
    let max = srv.db.maxmemory.load(Ordering::Relaxed) as f64;
    gauge(enc, "maxmemory_bytes", "maxmemory (0 = no limit)", max)?;
    let sources = *srv.memory_sources.lock();
    let labels: Labels = vec![
        ("policy", srv.db.policy().name().to_string()),
        ("maxmemory_source", sources[0].name().to_string()),
        ("policy_source", sources[1].name().to_string()),
    ];
    let help = "Always 1: the eviction policy, and where maxmemory and the policy came from";
    family(
        enc,
        "maxmemory_config",
        help,
        MetricType::Gauge,
        vec![(labels, ConstGauge::new(1))],
    )
}

/// Clients, connections, network bytes and uptime.
fn clients(srv: &Shared, enc: &mut DescriptorEncoder) -> Fmt {
    let st = &srv.stats;
    let connected = srv.connected.load(Ordering::Relaxed) as f64;
    gauge(
        enc,
        "connected_clients",
        "Client connections open",
        connected,
    )?;
    let blocked = srv.blocking.blocked_clients() + srv.pause.waiting.load(Ordering::Relaxed);
    let help = "Clients waiting in a blocking command or a CLIENT PAUSE";
    gauge(enc, "blocked_clients", help, blocked as f64)?;
    let n = st.connections_received.load(Ordering::Relaxed);
    counter(
        enc,
        "connections_received",
        "Client connections accepted",
        n,
    )?;
    let n = st.rejected_connections.load(Ordering::Relaxed);
    let help = "Client connections refused (maxclients)";
    counter(enc, "rejected_connections", help, n)?;
    let n = st.net_input_bytes.get();
    counter(enc, "net_input_bytes", "Bytes read from clients", n)?;
    let n = st.net_output_bytes.get();
    counter(enc, "net_output_bytes", "Bytes written to clients", n)?;
    let up = srv.started.elapsed().as_secs_f64();
    gauge(
        enc,
        "uptime_seconds",
        "Seconds since the process started",
        up,
    )
}

/// Per tier hits, misses, back-fills, invalidations and errors; the
/// upstream's state and request latency. Nothing without tiers.
fn tiers(text: &str, enc: &mut DescriptorEncoder) -> Fmt {
    let f = fields(text);
    let Some(kinds) = f.get("tiers") else {
        return Ok(());
    };
    let kinds: Vec<&str> = kinds.split(',').collect();
    let label = |i: usize| -> Labels { vec![("tier", i.to_string()), ("kind", kinds[i].into())] };
    for (field, name, help) in [
        ("hits", "tier_hits", "Lookups the tier answered"),
        ("misses", "tier_misses", "Lookups the tier could not answer"),
        ("backfills", "tier_backfills", "Keys copied into the tier"),
        (
            "invalidations",
            "tier_invalidations",
            "Invalidations received",
        ),
        ("errors", "tier_errors", "Requests to the tier that failed"),
    ] {
        let rows = (0..kinds.len())
            .filter_map(|i| {
                let v = number(&f, &format!("tier{i}_{field}"))?;
                Some((label(i), ConstCounter::new(v as u64)))
            })
            .collect();
        family(enc, name, help, MetricType::Counter, rows)?;
    }
    let up = f.get("upstream_status") == Some(&"up");
    let help = "1 while the upstream Redis answers (degraded mode at 0: hits still served)";
    gauge(enc, "upstream_up", help, if up { 1.0 } else { 0.0 })?;
    let i = kinds.iter().position(|k| *k != "memory").unwrap_or(0);
    let total = number(&f, &format!("tier{i}_latency_us_total")).unwrap_or(0.0);
    let count = number(&f, &format!("tier{i}_latency_count")).unwrap_or(0.0);
    let mut me = enc.encode_descriptor(
        "upstream_request_duration_seconds",
        "Round trips to the upstream (fetches, forwarded commands, pipelines)",
        None,
        MetricType::Histogram,
    )?;
    me.encode_histogram::<Labels>(total / 1e6, count as u64, &[], None)?;
    let max = number(&f, &format!("tier{i}_latency_max_us")).unwrap_or(0.0);
    let help = "Longest upstream round trip since start";
    gauge(
        enc,
        "upstream_request_duration_max_seconds",
        help,
        max / 1e6,
    )
}

/// Role, epoch, offset, followers' lag (cluster mode's INFO replication;
/// a node without a cluster is a master of epoch 0).
fn replication(text: Option<&str>, enc: &mut DescriptorEncoder) -> Fmt {
    let f = text.map(fields).unwrap_or_default();
    let role = f.get("role").copied().unwrap_or("master");
    let role = if role == "slave" { "follower" } else { role };
    let help = "Always 1: this node's replication role";
    let rows = vec![(vec![("role", role.to_string())], ConstGauge::new(1))];
    family(enc, "replication_role", help, MetricType::Gauge, rows)?;
    let get = |name: &str| number(&f, name).unwrap_or(0.0);
    let help = "Epoch of the master this node follows or is (0 outside cluster mode)";
    gauge(enc, "replication_epoch", help, get("epoch"))?;
    let help = "Replication log offset of this node";
    gauge(enc, "replication_offset", help, get("master_repl_offset"))?;
    if text.is_none() {
        return Ok(());
    }
    let help = "1 while the keyspace is complete (no full sync in progress, no gap)";
    gauge(
        enc,
        "replication_keyspace_complete",
        help,
        get("keyspace_complete"),
    )?;
    if role == "follower" {
        let up = f.get("master_link_status") == Some(&"up");
        let help = "1 while the follower's stream from the master is up";
        gauge(
            enc,
            "replication_master_link_up",
            help,
            if up { 1.0 } else { 0.0 },
        )?;
    }
    for (field, name, help) in [
        (
            "sync_full",
            "replication_full_syncs_served",
            "Full syncs served as master",
        ),
        (
            "sync_partial_ok",
            "replication_partial_syncs_served",
            "Partial syncs served as master",
        ),
        (
            "full_syncs_received",
            "replication_full_syncs_received",
            "Full syncs received as follower",
        ),
        (
            "forwarded_writes",
            "replication_forwarded_writes",
            "Writes forwarded to the master",
        ),
        (
            "elections_won",
            "replication_elections_won",
            "Elections won",
        ),
    ] {
        counter(enc, name, help, get(field) as u64)?;
    }
    followers(&f, enc)
}

/// Per follower (at the master): acknowledged offset, lag in bytes and time.
fn followers(f: &HashMap<&str, &str>, enc: &mut DescriptorEncoder) -> Fmt {
    let mut rows: Vec<(Labels, HashMap<&str, &str>)> = (0..)
        .map_while(|i| f.get(format!("slave{i}").as_str()).map(|v| pairs(v)))
        .map(|p| {
            (
                vec![("follower", p.get("id").unwrap_or(&"").to_string())],
                p,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, name, help, scale) in [
        (
            "offset",
            "replication_follower_offset",
            "Offset the follower acknowledged",
            1.0,
        ),
        (
            "lag_offset",
            "replication_follower_lag_bytes",
            "Log bytes the follower has not acknowledged",
            1.0,
        ),
        (
            "lag_ms",
            "replication_follower_lag_seconds",
            "Time since the follower's last acknowledgement",
            1e-3,
        ),
    ] {
        let values = rows
            .iter()
            .map(|(l, p)| {
                let v: f64 = p.get(key).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                (l.clone(), ConstGauge::new(v * scale))
            })
            .collect();
        family(enc, name, help, MetricType::Gauge, values)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_fold_hdr_counts() {
        let mut counts = vec![0u64; hdr::COUNTS];
        // 3 calls of 7 µs, 1 of 300 µs, 1 of 2 s (clamped to 1 s by hdr).
        counts[hdr::index(7_000)] += 3;
        counts[hdr::index(300_000)] += 1;
        counts[hdr::index(2_000_000_000)] += 1;
        let b = latency_buckets(&counts);
        assert_eq!(b.len(), LATENCY_BOUNDS.len() + 1);
        assert_eq!(b[0], (0.00001, 3));
        let at = |s: f64| b.iter().find(|(x, _)| *x == s).unwrap().1;
        assert_eq!(at(0.0005), 1);
        assert_eq!(at(1.0), 1);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 5);
    }
}
