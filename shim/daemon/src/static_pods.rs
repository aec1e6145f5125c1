//! Static pods, as the kubelet's `staticPodPath`: every manifest in a
//! folder runs; a new file starts its pod, a changed file replaces it, a
//! removed file deletes it. Their API objects are mirror pods: named
//! `<name>-<node>`, annotated `kubernetes.io/config.mirror` (and
//! `config.source: file`, `config.hash`). Deleting a mirror pod through the
//! API does not stop the pod: the mirror is made again with a new uid, as
//! the kubelet does.
//!
//! A static pod's uid is a hash of its file and the node's name, as the
//! kubelet's: after a restart of the daemon, the pod it restored from its
//! record is the file's pod again (adopted, not made anew) as long as the
//! file did not change; a static pod whose file is gone or changed goes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use wasipod::PodSpec;

use crate::api::Api;

/// The annotation that marks a mirror pod.
pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// The annotation naming where a pod came from (`file` for static pods).
const SOURCE: &str = "kubernetes.io/config.source";

/// Whether a pod with these annotations is a static pod.
pub fn is_static(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations.get(SOURCE).is_some_and(|s| s == "file")
}

/// One running static pod: its file's hash and its pod.
struct Running {
    hash: String,
    namespace: String,
    name: String,
}

/// Watches `dir` every `interval` until `stop`, keeping one pod per
/// manifest file (`*.yaml`, `*.yml`, `*.json`).
pub async fn run(api: Arc<Api>, dir: PathBuf, interval: Duration, stop: CancellationToken) {
    let mut running: HashMap<PathBuf, Running> = HashMap::new();
    loop {
        sync(&api, &dir, &mut running).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One pass: start new files' pods, replace changed ones', delete removed
/// ones'.
///
/// Steps: read the folder's manifests and hash them; delete the pods of
/// files gone or changed (waiting for their termination); create the pods
/// of new or changed files.
async fn sync(api: &Arc<Api>, dir: &Path, running: &mut HashMap<PathBuf, Running>) {
    let mut files: HashMap<PathBuf, (String, String)> = HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let manifest = path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
        if !manifest || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
            files.insert(path, (hash[..32].to_string(), text));
        }
    }
    let stale: Vec<PathBuf> = running
        .iter()
        .filter(|(path, r)| files.get(*path).is_none_or(|(hash, _)| *hash != r.hash))
        .map(|(path, _)| path.clone())
        .collect();
    for path in stale {
        if let Some(r) = running.remove(&path)
            && let Some(pod) = api.runtime.get(&r.namespace, &r.name)
        {
            crate::sync_lock(&api.mirrors).remove(&(r.namespace.clone(), r.name.clone()));
            pod.delete(None).await;
        }
    }
    let wanted: Vec<(String, String, String)> = files
        .values()
        .filter_map(|(hash, text)| identity(api, hash, text).ok())
        .collect();
    remove_orphans(api, running, &wanted).await;
    for (path, (hash, text)) in files {
        if running.contains_key(&path) {
            continue;
        }
        // The first pass after a restart: what the restore brought back
        // of this file's pod is adopted when the file is the same.
        if let Ok((namespace, name, uid)) = identity(api, &hash, &text)
            && let Some(pod) = api.runtime.get(&namespace, &name)
            && pod.uid() == uid
        {
            crate::sync_lock(&api.mirrors).insert((namespace.clone(), name.clone()), uid.clone());
            running.insert(
                path,
                Running {
                    hash,
                    namespace,
                    name,
                },
            );
            continue;
        }
        match start(api, &path, &hash, &text).await {
            Ok((namespace, name)) => {
                running.insert(
                    path,
                    Running {
                        hash,
                        namespace,
                        name,
                    },
                );
            }
            // Kept out of `running`: tried again at the next pass, and its
            // error said once per change of the file.
            Err(e) => {
                let mut failed = crate::sync_lock(&api.static_errors);
                if failed.get(&path) != Some(&hash) {
                    eprintln!("wasipodd: static pod {}: {e}", path.display());
                    failed.insert(path, hash);
                }
            }
        }
    }
}

/// Static pods no file stands for any more (restored from records whose
/// file changed or went while the daemon was down): deleted. `wanted` are
/// the namespace, name and uid of each file's pod.
async fn remove_orphans(
    api: &Arc<Api>,
    running: &HashMap<PathBuf, Running>,
    wanted: &[(String, String, String)],
) {
    for pod in api.runtime.list(None) {
        let known = running
            .values()
            .any(|r| r.namespace == pod.namespace() && r.name == pod.name())
            || wanted.iter().any(|(ns, name, uid)| {
                ns == pod.namespace() && name == pod.name() && uid == pod.uid()
            });
        if !known && is_static(&pod.annotations()) {
            crate::sync_lock(&api.mirrors)
                .remove(&(pod.namespace().to_string(), pod.name().to_string()));
            pod.delete(None).await;
        }
    }
}

/// The namespace, name and uid a manifest's static pod has.
fn identity(api: &Api, hash: &str, text: &str) -> Result<(String, String, String), String> {
    let docs = static_documents(api, hash, text)?;
    let pod = docs
        .iter()
        .find(|d| d["kind"] == "Pod")
        .ok_or("no Pod in the file")?;
    let field = |f: &str| pod["metadata"][f].as_str().unwrap_or("default").to_string();
    Ok((field("namespace"), field("name"), field("uid")))
}

/// A manifest's documents with its pod made static: its name suffixed with
/// the node's, its uid the hash of the file and the node's name, the
/// mirror annotations added.
fn static_documents(api: &Api, hash: &str, text: &str) -> Result<Vec<Value>, String> {
    let mut docs: Vec<Value> = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = <Value as serde::Deserialize>::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let pod = docs
        .iter_mut()
        .find(|d| d["kind"] == "Pod")
        .ok_or("no Pod in the file")?;
    let name = pod["metadata"]["name"]
        .as_str()
        .ok_or("metadata.name is missing")?;
    let name = format!("{name}-{}", api.node);
    let digest = Sha256::digest(format!("{}\n{text}", api.node).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uid = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string();
    let meta = pod
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or("metadata is not a map")?;
    meta.insert("name".into(), Value::String(name));
    meta.insert("uid".into(), Value::String(uid));
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(MIRROR.into(), Value::String(hash.into()));
        a.insert(
            "kubernetes.io/config.hash".into(),
            Value::String(hash.into()),
        );
        a.insert(SOURCE.into(), Value::String("file".into()));
    }
    Ok(docs)
}

/// Starts a manifest's pod as a static pod ([`static_documents`]).
async fn start(
    api: &Arc<Api>,
    path: &Path,
    hash: &str,
    text: &str,
) -> Result<(String, String), String> {
    let docs = static_documents(api, hash, text)?;
    let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let base = path.parent().unwrap_or(Path::new("."));
    let spec = PodSpec::from_yaml(&text, base).map_err(|e| e.to_string())?;
    let namespace = spec.namespace.clone();
    let pod = api
        .runtime
        .create_pod(spec)
        .await
        .map_err(|e| e.to_string())?;
    let name = pod.name().to_string();
    crate::sync_lock(&api.mirrors).insert((namespace.clone(), name.clone()), pod.uid().to_string());
    Ok((namespace, name))
}
