//! The Kubernetes sidecar example (`examples/kubernetes/`), checked against
//! the built binary: every jcache container's arguments, with each
//! ConfigMap's config file mounted where the Deployment mounts it, pass
//! `jcache --check-config`, and the probes ask the port `--metrics-port`
//! (or the file's `metrics_port`) opens.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

/// Every YAML document under `dir`, with the file it came from.
fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(documents(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let v =
                    Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if !v.is_null() {
                    out.push((path.clone(), v));
                }
            }
        }
    }
    out
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The value following `--name` in `args` (or given as `--name=value`).
fn arg(args: &[String], name: &str) -> Option<String> {
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&eq).map(str::to_string)
        }
    })
}

/// A probe's port as a number (a named port is looked up in the container's ports).
fn probe_port(container: &Value, probe: &str) -> u64 {
    let port = &container[probe]["httpGet"]["port"];
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port
        .as_str()
        .unwrap_or_else(|| panic!("{probe} has no httpGet port"));
    container["ports"]
        .as_sequence()
        .and_then(|ps| ps.iter().find(|p| p["name"].as_str() == Some(name)))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{probe}: no container port named {name}"))
}

/// Runs `jcache --check-config` with `args`; the output on failure.
fn check_config(args: &[String]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_jcache"))
        .args(args)
        .arg("--check-config")
        .env_clear()
        .output()
        .expect("run jcache");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "jcache {args:?} --check-config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `key = value` of a top-level TOML key, as text.
fn toml_key(text: &str, key: &str) -> Option<String> {
    let table: toml::Table = text.parse().expect("config file is TOML");
    table.get(key).map(|v| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[test]
fn the_sidecar_example_is_accepted_and_its_probes_match() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    let docs = documents(&dir);
    let config_maps: Vec<&(PathBuf, Value)> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "ConfigMap")
        .collect();
    let deployments: Vec<&(PathBuf, Value)> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "Deployment")
        .collect();
    assert!(
        !deployments.is_empty(),
        "no Deployment in {}",
        dir.display()
    );
    assert!(
        config_maps.len() >= 3,
        "the plain, Redis Cluster and Sentinel ConfigMaps"
    );
    let tmp = std::env::temp_dir().join(format!("jcache-k8s-{}", std::process::id()));
    let mut checked = 0;
    for (file, dep) in &deployments {
        let spec = &dep["spec"]["template"]["spec"];
        let containers = spec["containers"].as_sequence().expect("containers");
        let jcache = containers
            .iter()
            .find(|c| c["name"].as_str() == Some("jcache"))
            .unwrap_or_else(|| panic!("{}: no jcache container", file.display()));
        let args = strings(&jcache["args"]);
        // The application reaches jcache on localhost:6379.
        let app_env = containers
            .iter()
            .filter(|c| c["name"].as_str() != Some("jcache"))
            .flat_map(|c| c["env"].as_sequence().cloned().unwrap_or_default())
            .filter_map(|e| e["value"].as_str().map(str::to_string))
            .collect::<Vec<_>>();
        assert!(
            app_env.iter().any(|v| v.contains("localhost:6379")),
            "{}: the application does not use localhost:6379",
            file.display()
        );
        // Each ConfigMap the Deployment could mount, as the file --config names.
        let config_path = arg(&args, "--config");
        let variants: Vec<Option<(&PathBuf, String)>> = match &config_path {
            None => vec![None],
            Some(path) => config_maps
                .iter()
                .map(|(cm_file, cm)| {
                    let key = mounted(spec, jcache, cm, path)
                        .unwrap_or_else(|| panic!("{path} is not mounted from a ConfigMap"));
                    let text = cm["data"][key.as_str()]
                        .as_str()
                        .unwrap_or_else(|| panic!("{}: no key {key}", cm_file.display()))
                        .to_string();
                    Some((cm_file, text))
                })
                .collect(),
        };
        for variant in variants {
            let mut args = args.clone();
            let mut file_text = String::new();
            if let Some((cm_file, text)) = &variant {
                std::fs::create_dir_all(&tmp).unwrap();
                let local = tmp.join(format!("jcache-{checked}.toml"));
                std::fs::write(&local, text).unwrap();
                let at = args.iter().position(|a| a == "--config").unwrap();
                args[at + 1] = local.display().to_string();
                file_text = text.clone();
                eprintln!("checking {} with {}", file.display(), cm_file.display());
            }
            check_config(&args).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let metrics_port: u64 = arg(&args, "--metrics-port")
                .or_else(|| toml_key(&file_text, "metrics_port"))
                .unwrap_or_else(|| panic!("{}: no metrics port", file.display()))
                .parse()
                .unwrap();
            for probe in ["livenessProbe", "readinessProbe"] {
                assert_eq!(
                    probe_port(jcache, probe),
                    metrics_port,
                    "{}: {probe}",
                    file.display()
                );
            }
            assert_eq!(
                jcache["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/healthz")
            );
            assert_eq!(
                jcache["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/readyz")
            );
            let client_port = arg(&args, "--port")
                .or_else(|| toml_key(&file_text, "port"))
                .unwrap_or_else(|| "6379".into());
            assert_eq!(client_port, "6379", "{}", file.display());
            assert!(
                jcache["resources"]["limits"]["memory"].as_str().is_some(),
                "{}: jcache needs a memory limit (maxmemory follows it)",
                file.display()
            );
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(checked >= 3, "checked {checked} variants");
}

/// The key of ConfigMap `cm` that `path` is, when the container mounts
/// `cm` at `path`'s directory.
fn mounted(spec: &Value, container: &Value, cm: &Value, path: &str) -> Option<String> {
    let cm_name = cm["metadata"]["name"].as_str()?;
    let volume = spec["volumes"]
        .as_sequence()?
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(cm_name))?;
    let volume_name = volume["name"].as_str()?;
    let mount = container["volumeMounts"]
        .as_sequence()?
        .iter()
        .find(|m| m["name"].as_str() == Some(volume_name))?;
    let mount_path = mount["mountPath"].as_str()?.trim_end_matches('/');
    let key = path.strip_prefix(mount_path)?.strip_prefix('/')?;
    Some(key.to_string())
}
