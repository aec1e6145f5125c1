//! After a restart of the daemon (or of the machine): the namespaces,
//! ConfigMaps and Secrets it stored, then every pod its runtime recorded,
//! brought back as a kubelet does after a node restart (see
//! [`wasipod::Runtime::restore_pod`]): pods that were running run again
//! with `restartCount` one more and their previous logs kept; finished
//! pods keep their final status.

use std::path::Path;
use std::sync::Arc;

use crate::api::Api;
use crate::static_pods;

/// Takes back the stored objects, then restores the recorded pods (before
/// the API is served). A pod that cannot come back is reported and its
/// record left on disk.
///
/// Steps: namespaces; ConfigMaps and Secrets; then each record, oldest
/// first: a pod of a namespace deleted meanwhile goes with its folder;
/// any other is validated again (its references resolve against its
/// namespace's objects; a static pod's relative image paths against the
/// manifests folder) and restored.
pub async fn run(api: &Arc<Api>, manifests: Option<&Path>) {
    for v in api.disk.load("namespaces") {
        if let Some(name) = v["metadata"]["name"].as_str() {
            crate::sync_lock(&api.namespaces).insert(name.to_string());
        }
    }
    api.objects.load(&api.disk);
    let Some(state) = api.runtime.config().state_dir.clone() else {
        return;
    };
    let mut restored = 0;
    for record in wasipod::store::list(&state) {
        let (ns, name) = (record.namespace().to_string(), record.name().to_string());
        let uid = record.object.metadata.uid.clone().unwrap_or_default();
        if !crate::sync_lock(&api.namespaces).contains(&ns) {
            api.runtime.node().discard_pod_folder(&ns, &name, &uid);
            continue;
        }
        let base = match manifests {
            Some(dir) if static_pods::is_static(&record.object.metadata.annotations) => dir,
            _ => api.base_dir.as_path(),
        };
        let spec = match record.pod_spec(&api.objects.documents(&ns), base) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("wasipodd: cannot restore pod {ns}/{name}: {e}");
                continue;
            }
        };
        match api.runtime.restore_pod(spec, &record.object).await {
            Ok(Some(_)) => restored += 1,
            Ok(None) => {}
            Err(e) => eprintln!("wasipodd: cannot restore pod {ns}/{name}: {e}"),
        }
    }
    if restored > 0 {
        println!(
            "wasipodd: {restored} pods restored from {}",
            state.display()
        );
    }
}
