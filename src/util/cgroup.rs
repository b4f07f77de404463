//! The memory limit of the cgroup this process runs in (v2 `memory.max`,
//! v1 `memory.limit_in_bytes`), read below an injectable root so that unit
//! tests run on fixture files.

use std::path::{Path, PathBuf};

/// Limits from here up mean "no limit": cgroup v1 reports an unset limit
/// as 2^63 rounded down to a page, v2 as `max`.
const UNLIMITED_FROM: u64 = 1 << 60;

/// One limit file's text: its bytes, or None for `max`, a huge value, 0 or
/// anything unreadable.
pub fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v > 0 && v < UNLIMITED_FROM).then_some(v)
}

/// The tightest memory limit over this process's cgroup and its ancestors,
/// v2 and v1 both looked at (a hybrid host mounts both), or None when no
/// level has one. `root` is the filesystem root (`/` outside tests).
///
/// Inside a container with its own cgroup namespace (Kubernetes, Docker)
/// `/proc/self/cgroup` says `/` and the limit is the root's file; on a
/// host (a systemd unit with `MemoryMax=`) the process's own directory
/// and those above it hold it.
pub fn memory_limit(root: &Path) -> Option<u64> {
    let own = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap_or_default();
    let v2 = own.lines().find_map(|l| l.strip_prefix("0::"));
    let v1 = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    let base = root.join("sys/fs/cgroup");
    let v2_limits = levels(&base, v2.unwrap_or("/")).map(|d| d.join("memory.max"));
    let v1_limits =
        levels(&base.join("memory"), v1.unwrap_or("/")).map(|d| d.join("memory.limit_in_bytes"));
    v2_limits
        .chain(v1_limits)
        .filter_map(|file| parse_limit(&std::fs::read_to_string(file).ok()?))
        .min()
}

/// `base` joined with `path` and each of its ancestors, deepest first,
/// `base` itself last.
fn levels(base: &Path, path: &str) -> impl Iterator<Item = PathBuf> {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(str::to_string)
        .collect();
    let base = base.to_path_buf();
    (0..=parts.len())
        .rev()
        .map(move |n| parts[..n].iter().fold(base.clone(), |d, p| d.join(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake filesystem root with the given files.
    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("jcache-cgroup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn limit_texts() {
        assert_eq!(parse_limit("536870912\n"), Some(536870912));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit(""), None);
    }

    #[test]
    fn v2_in_a_container_namespace() {
        let root = fixture(
            "v2",
            &[
                ("proc/self/cgroup", "0::/\n"),
                ("sys/fs/cgroup/memory.max", "1073741824\n"),
            ],
        );
        assert_eq!(memory_limit(&root), Some(1 << 30));
        std::fs::write(root.join("sys/fs/cgroup/memory.max"), "max\n").unwrap();
        assert_eq!(memory_limit(&root), None);
    }

    #[test]
    fn v1_unlimited_and_limited() {
        let root = fixture(
            "v1",
            &[
                ("proc/self/cgroup", "4:memory:/\n3:cpu,cpuacct:/\n"),
                (
                    "sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "9223372036854771712\n",
                ),
            ],
        );
        assert_eq!(memory_limit(&root), None);
        std::fs::write(
            root.join("sys/fs/cgroup/memory/memory.limit_in_bytes"),
            "268435456\n",
        )
        .unwrap();
        assert_eq!(memory_limit(&root), Some(256 << 20));
    }

    #[test]
    fn the_tightest_level_of_a_host_cgroup_wins() {
        let root = fixture(
            "host",
            &[
                ("proc/self/cgroup", "0::/system.slice/jcache.service\n"),
                ("sys/fs/cgroup/memory.max", "max\n"),
                ("sys/fs/cgroup/system.slice/memory.max", "2147483648\n"),
                (
                    "sys/fs/cgroup/system.slice/jcache.service/memory.max",
                    "max\n",
                ),
            ],
        );
        assert_eq!(memory_limit(&root), Some(2 << 30));
    }

    #[test]
    fn nothing_to_read_is_no_limit() {
        let root = fixture("none", &[]);
        assert_eq!(memory_limit(&root), None);
    }
}
