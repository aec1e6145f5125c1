//! Pod records on disk: what a front end reads about pods after (or while)
//! another process runs them — `wasipod get`, `logs`, `stop`, `rm`.
//!
//! A record is the pod's `v1 Pod` document in its folder
//! ([`PodLayout::record`]), replaced whole on each save. Whether a pod still
//! runs is known from the lock its process holds on the state folder (see
//! [`state`](crate::sandbox::state)), never from a pid file whose pid may have been
//! recycled.

use std::path::Path;

use crate::api::manifest::ManifestFile;
use crate::api::status::PodPhase;
use crate::error::{ManifestError, RuntimeError};
use crate::log::LogOptions;
use crate::runtime::PodObject;
use crate::sandbox::layout::{self, PodLayout};
use crate::spec::PodSpec;

/// Writes a pod's record (a temporary file renamed over the old one, so
/// that a reader never sees half a record).
pub fn save(pod_dir: &Path, object: &PodObject) -> Result<(), RuntimeError> {
    let path = PodLayout::at(pod_dir.to_path_buf()).record();
    // A name of its own: two saves at once never write one file.
    let tmp = path.with_extension(format!("json.{}.tmp", uuid::Uuid::new_v4().simple()));
    let json = serde_json::to_vec_pretty(object).map_err(|e| RuntimeError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| RuntimeError::Io { path, source: e })
}

/// A pod recorded in a state folder.
#[derive(Debug, Clone)]
pub struct Record {
    /// The pod's folder.
    pub layout: PodLayout,
    /// Its last saved document.
    pub object: PodObject,
    /// The process running it, while one does.
    pub pid: Option<u32>,
}

impl Record {
    /// Whether a process runs the pod now.
    pub fn is_running(&self) -> bool {
        self.pid.is_some()
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        self.object.metadata.namespace.as_deref().unwrap_or("")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or("")
    }

    /// The phase as a reader should show it: `Unknown` for a pod whose
    /// process stopped before the pod finished (killed, or the machine
    /// restarted).
    pub fn phase(&self) -> PodPhase {
        let phase = self.object.status.phase;
        if !self.is_running() && !phase.is_terminal() {
            PodPhase::Unknown
        } else {
            phase
        }
    }

    /// A container's log as the record knows it (see [`LogOptions`]). With
    /// no container named, the pod's only app container.
    pub fn logs(&self, options: &LogOptions) -> Result<Vec<u8>, RuntimeError> {
        let s = &self.object.status;
        let pod = self.name().to_string();
        let mut all = s
            .init_container_statuses
            .iter()
            .chain(&s.container_statuses);
        let c = if options.container.is_empty() {
            match s.container_statuses.as_slice() {
                [only] => only,
                _ => {
                    let names: Vec<&str> = s
                        .init_container_statuses
                        .iter()
                        .chain(&s.container_statuses)
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(RuntimeError::FailedPrecondition {
                        object: format!("pod {pod}"),
                        message: format!(
                            "a container name must be specified for pod {pod}, choose one of: [{}]",
                            names.join(" ")
                        ),
                    });
                }
            }
        } else {
            all.find(|c| c.name == options.container).ok_or_else(|| {
                RuntimeError::NoSuchContainer {
                    pod: pod.clone(),
                    container: options.container.clone(),
                }
            })?
        };
        let run = if options.previous {
            c.restart_count
                .checked_sub(1)
                .ok_or_else(|| RuntimeError::FailedPrecondition {
                    object: format!("pod {pod}"),
                    message: format!("previous terminated container \"{}\" not found", c.name),
                })?
        } else {
            c.restart_count
        };
        let path = self.layout.log(&c.name, run);
        crate::log::read(&path, options, true).map_err(|e| RuntimeError::Io { path, source: e })
    }

    /// The recorded pod as a spec for [`Runtime::restore_pod`]: its
    /// metadata (uid, names, creation time) and spec, validated again.
    /// `documents` are more manifests its references resolve against (the
    /// ConfigMaps and Secrets of its namespace; may be empty); relative
    /// image paths resolve against `base_dir`. Images are not looked up
    /// here: a finished pod needs none.
    ///
    /// [`Runtime::restore_pod`]: crate::Runtime::restore_pod
    pub fn pod_spec(&self, documents: &str, base_dir: &Path) -> Result<PodSpec, ManifestError> {
        let pod = serde_json::json!({
            "apiVersion": self.object.api_version,
            "kind": self.object.kind,
            "metadata": self.object.metadata,
            "spec": self.object.spec,
        });
        let text = format!("{pod}\n---\n{documents}");
        let source = self.layout.record().display().to_string();
        PodSpec::try_from(ManifestFile::from_yaml(&text, base_dir, &source)?)
    }

    /// Removes the pod's folder. A running pod is refused.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        if self.is_running() {
            return Err(RuntimeError::FailedPrecondition {
                object: format!("pod {}", self.name()),
                message: "the pod is running; stop it first".into(),
            });
        }
        let dir = self.layout.dir();
        std::fs::remove_dir_all(dir).map_err(|e| RuntimeError::Io {
            path: dir.to_path_buf(),
            source: e,
        })
    }
}

/// Every pod recorded in `state_dir`, oldest first. Folders without a
/// readable record are skipped.
pub fn list(state_dir: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(layout::pods_dir(state_dir)) else {
        return Vec::new();
    };
    let running = crate::sandbox::state::running_pods(state_dir);
    let mut out: Vec<Record> = entries
        .flatten()
        .filter_map(|e| {
            let layout = PodLayout::at(e.path());
            let bytes = std::fs::read(layout.record()).ok()?;
            let object = serde_json::from_slice::<PodObject>(&bytes).ok()?;
            let pid = running.get(&*e.file_name().to_string_lossy()).copied();
            Some(Record {
                layout,
                object,
                pid,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.object
            .metadata
            .creation_timestamp
            .cmp(&b.object.metadata.creation_timestamp)
    });
    out
}

/// The newest record of pod `namespace/name` in `state_dir`.
pub fn find(state_dir: &Path, namespace: &str, name: &str) -> Result<Record, RuntimeError> {
    list(state_dir)
        .into_iter()
        .rev()
        .find(|r| r.name() == name && r.namespace() == namespace)
        .ok_or_else(|| RuntimeError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
}
