//! Redis Sentinel for the upstream tier: which server is the primary of a
//! named master (asked on every connect), and `+switch-master` heard from
//! every sentinel, so a failover moves the tier to the new primary.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tracing::warn;

use super::redis::{open_client, RedisTier};
use crate::config::{SentinelUrl, UpstreamTls};

/// The URL of the sentinel at `addr` (TLS for `rediss+sentinel://`).
pub fn url(s: &SentinelUrl, addr: &str) -> String {
    let scheme = if s.tls { "rediss" } else { "redis" };
    format!("{scheme}://{addr}")
}

/// The primary's `host:port` as the first sentinel that knows the master
/// says (in the URL's order; one that is down or does not know it is
/// skipped).
pub async fn resolve(
    s: &SentinelUrl,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<String, String> {
    let mut last = String::new();
    for addr in &s.sentinels {
        match ask(&url(s, addr), &s.master, tls, timeout).await {
            Ok(Some(primary)) => return Ok(primary),
            Ok(None) => last = format!("sentinel {addr} does not know master '{}'", s.master),
            Err(e) => last = format!("sentinel {addr}: {e}"),
        }
    }
    Err(format!("no sentinel gave the primary: {last}"))
}

async fn ask(
    url: &str,
    master: &str,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let client = open_client(url, tls, timeout)?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let asked = async {
        let mut c = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query_async::<Option<(String, u16)>>(&mut c)
            .await
    };
    match tokio::time::timeout(timeout, asked).await {
        Err(_) => Err("timeout".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(v)) => Ok(v.map(|(host, port)| host_port(&host, port))),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether the server behind `conn` is a primary (ROLE), within `timeout`.
/// A primary demoted by a failover answers `slave`.
pub async fn is_primary(conn: &MultiplexedConnection, timeout: Duration) -> bool {
    let mut conn = conn.clone();
    let role = tokio::time::timeout(timeout, conn.send_packed_command(&redis::cmd("ROLE"))).await;
    match role {
        Ok(Ok(Value::Array(items))) => matches!(
            items.first(),
            Some(Value::BulkString(b)) if b == b"master"
        ),
        _ => false,
    }
}

/// Listens for `+switch-master` on the sentinel at `addr` for as long as
/// the tier lives, reconnecting after a second when the link drops. A
/// switch of `master` makes the tier drop its local copies (the new
/// primary may lack writes the old one took) and reconnect, asking the
/// sentinels again.
pub async fn watch(
    tier: Weak<RedisTier>,
    addr: String,
    master: String,
    tls: UpstreamTls,
    timeout: Duration,
) {
    let mut logged = false;
    while tier.strong_count() > 0 {
        match subscribe(&addr, &tls, timeout).await {
            Ok(mut pubsub) => {
                logged = false;
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
                    let words: Vec<&str> = payload.split_whitespace().collect();
                    if words.len() != 5 || words[0] != master {
                        continue;
                    }
                    let Some(t) = tier.upgrade() else { return };
                    let new = words[4]
                        .parse()
                        .map(|port| host_port(words[3], port))
                        .unwrap_or_default();
                    warn!(sentinel = %addr, master = %master, primary = %new, "sentinel switched the primary");
                    t.primary_switched(&new);
                }
            }
            Err(e) => {
                if !logged {
                    warn!(sentinel = %addr, error = %e, "cannot subscribe to sentinel; retrying");
                    logged = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn subscribe(
    url: &str,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<redis::aio::PubSub, String> {
    let client = open_client(url, tls, timeout)?;
    let subscribed = async {
        let mut p = client.get_async_pubsub().await?;
        p.subscribe("+switch-master").await?;
        Ok::<_, redis::RedisError>(p)
    };
    match tokio::time::timeout(timeout, subscribed).await {
        Err(_) => Err("timeout".into()),
        Ok(r) => r.map_err(|e| e.to_string()),
    }
}
