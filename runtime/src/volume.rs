//! The pod's volumes on the host, and the preopened directories each
//! container gets from them.
//!
//! - `emptyDir`: `<pod dir>/.volumes/<name>/`, created with the pod and
//!   removed when the pod is deleted.
//! - `hostPath`: the host folder itself (never removed).
//! - `configMap` / `secret`: the keys written as files under
//!   `<pod dir>/.volumes/<name>/`, always mounted read-only.
//! - each container's `/run/wasipod`: `<pod dir>/<container>/run/`, next to
//!   the container's logs (a container name cannot begin with a dot, so it
//!   never meets `.volumes`).
//!
//! A guest reaches only its preopens: wasmtime-wasi resolves every path
//! with cap-std, which refuses `..`, absolute paths and symlinks that lead
//! out. `subPath` is resolved the same way on the host, so a symlink planted
//! in a volume cannot redirect a mount outside it.

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::engine::Preopen;
use crate::error::RuntimeError;
use crate::pod::{ContainerSpec, PodSpec, VolumeSource};

/// The host side of a pod's volumes.
#[derive(Debug)]
pub(crate) struct Sandbox {
    /// Host directory of each volume, by index in `spec.volumes`.
    roots: Vec<PathBuf>,
    /// `<pod dir>/.volumes`, removed on cleanup.
    owned: PathBuf,
    /// Whether `owned` was made (pods with only hostPath volumes have none).
    has_owned: bool,
    /// The pod's folder: `<container>/run` is each container's runtime
    /// folder (`/run/wasipod`).
    pod_dir: PathBuf,
    /// The containers, whose runtime folders `remove` takes away.
    containers: Vec<String>,
}

fn io_err(field: &str, what: &Path, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Volume {
        field: field.to_string(),
        message: format!("{}: {e}", what.display()),
    }
}

impl Sandbox {
    /// Creates the pod's volumes under `pod_dir`.
    pub(crate) fn prepare(spec: &PodSpec, pod_dir: &Path) -> Result<Self, RuntimeError> {
        // Every file-system call counts on the start path (a few µs each):
        // folders are made one level at a time, only those that are needed.
        let owned = pod_dir.join(".volumes");
        // Only pods with emptyDir/configMap/secret volumes need the folder.
        let has_owned = spec
            .volumes
            .iter()
            .any(|v| !matches!(v.source, VolumeSource::HostPath { .. }));
        let sandbox = Sandbox {
            roots: Vec::new(),
            owned,
            has_owned: false,
            pod_dir: pod_dir.to_path_buf(),
            containers: spec
                .init_containers
                .iter()
                .chain(&spec.containers)
                .map(|c| c.name.clone())
                .collect(),
        };
        let mut sandbox = scopeguard(sandbox);
        if has_owned {
            std::fs::create_dir(&sandbox.owned)
                .map_err(|e| io_err("spec.volumes", &sandbox.owned, e))?;
            sandbox.has_owned = true;
        }
        for vol in &spec.volumes {
            let root = match &vol.source {
                VolumeSource::EmptyDir => {
                    let dir = sandbox.owned.join(&vol.name);
                    std::fs::create_dir(&dir).map_err(|e| io_err(&vol.field, &dir, e))?;
                    dir
                }
                VolumeSource::HostPath { path, create } => {
                    let field = format!("{}.hostPath.path", vol.field);
                    if *create {
                        std::fs::create_dir_all(path).map_err(|e| io_err(&field, path, e))?;
                    }
                    match std::fs::metadata(path) {
                        Ok(m) if m.is_dir() => path.clone(),
                        Ok(_) => {
                            return Err(RuntimeError::Volume {
                                field,
                                message: format!(
                                    "{}: not a directory (a WASI mount is a directory)",
                                    path.display()
                                ),
                            });
                        }
                        Err(_) => {
                            return Err(RuntimeError::Volume {
                                field,
                                message: format!(
                                    "Not found: {}: the directory does not exist (type DirectoryOrCreate creates it)",
                                    path.display()
                                ),
                            });
                        }
                    }
                }
                VolumeSource::Files { files } => {
                    let dir = sandbox.owned.join(&vol.name);
                    std::fs::create_dir(&dir).map_err(|e| io_err(&vol.field, &dir, e))?;
                    let root = Dir::open_ambient_dir(&dir, ambient_authority())
                        .map_err(|e| io_err(&vol.field, &dir, e))?;
                    for (rel, bytes) in files {
                        if let Some(parent) = Path::new(rel).parent()
                            && !parent.as_os_str().is_empty()
                        {
                            root.create_dir_all(parent)
                                .map_err(|e| io_err(&vol.field, &dir.join(rel), e))?;
                        }
                        root.write(rel, bytes)
                            .map_err(|e| io_err(&vol.field, &dir.join(rel), e))?;
                    }
                    dir
                }
            };
            sandbox.roots.push(root);
        }
        Ok(sandbox.defuse())
    }

    /// The preopens of one container, `subPath` resolved inside its volume.
    pub(crate) fn preopens(&self, c: &ContainerSpec) -> Result<Vec<Preopen>, RuntimeError> {
        let mut out = Vec::with_capacity(c.mounts.len());
        for m in &c.mounts {
            let root = &self.roots[m.volume];
            let host = match &m.sub_path {
                None => root.clone(),
                Some(sub) => resolve_sub_path(root, sub, &format!("{}.subPath", m.field))?,
            };
            out.push(Preopen {
                host,
                guest: m.mount_path.clone(),
                read_only: m.read_only,
            });
        }
        // WASI has no current directory; wasi-libc resolves relative paths
        // through a preopen named ".", so workingDir becomes one.
        if let Some((index, rest)) = &c.working_dir_mount {
            let mount = &out[*index];
            let host = if rest.is_empty() {
                mount.host.clone()
            } else {
                resolve_sub_path(&mount.host, rest, &format!("{}.workingDir", c.field))?
            };
            let read_only = mount.read_only;
            out.push(Preopen {
                host,
                guest: ".".into(),
                read_only,
            });
        }
        Ok(out)
    }

    /// A new, empty runtime folder for a container's next run (`first`:
    /// its first run, when the container's folder does not exist yet).
    pub(crate) fn fresh_run_dir(
        &self,
        container: &str,
        first: bool,
    ) -> Result<PathBuf, RuntimeError> {
        let dir = run_dir(&self.pod_dir, container);
        let io = |e| RuntimeError::Io {
            path: dir.clone(),
            source: e,
        };
        if first {
            // The container's folder (its logs, run/) is new with the pod.
            if let Some(parent) = dir.parent() {
                std::fs::create_dir(parent)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => std::fs::create_dir_all(parent),
                    })
                    .map_err(io)?;
            }
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(io)?;
            }
            // A restart: what the last run left is cleared.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_dir_all(&dir).map_err(io)?;
                std::fs::create_dir(&dir).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        Ok(dir)
    }

    /// Removes what the pod owns (emptyDirs, configMap/secret files, the
    /// containers' runtime folders); host paths are left alone.
    pub(crate) fn remove(&self) {
        for c in &self.containers {
            remove_tree(&run_dir(&self.pod_dir, c));
        }
        if self.has_owned {
            remove_tree(&self.owned);
        }
    }
}

/// A container's runtime folder (`/run/wasipod` in the guest).
pub(crate) fn run_dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join(container).join("run")
}

/// Removes a folder and what it holds; an empty one (the usual runtime
/// folder) costs a single call.
fn remove_tree(dir: &Path) {
    let result = match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => std::fs::remove_dir_all(dir),
        other => other,
    };
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a folder of the pod");
    }
}

/// Creates (if needed) and returns `root/sub` after checking, through
/// cap-std and once more on the canonical path, that it stays inside `root`.
fn resolve_sub_path(root: &Path, sub: &str, field: &str) -> Result<PathBuf, RuntimeError> {
    let dir =
        Dir::open_ambient_dir(root, ambient_authority()).map_err(|e| io_err(field, root, e))?;
    dir.create_dir_all(sub).map_err(|e| RuntimeError::Volume {
        field: field.to_string(),
        message: format!("{sub:?}: cannot be created inside the volume: {e}"),
    })?;
    let path = root.join(sub);
    let canonical_root = root.canonicalize().map_err(|e| io_err(field, root, e))?;
    let canonical = path.canonicalize().map_err(|e| io_err(field, &path, e))?;
    if !canonical.starts_with(&canonical_root) {
        return Err(RuntimeError::Volume {
            field: field.to_string(),
            message: format!("{sub:?}: leads outside its volume"),
        });
    }
    if !canonical.is_dir() {
        return Err(RuntimeError::Volume {
            field: field.to_string(),
            message: format!("{sub:?}: not a directory (a WASI mount is a directory)"),
        });
    }
    Ok(canonical)
}

/// Removes the half-made sandbox if preparation fails.
struct Guard(Option<Sandbox>);

fn scopeguard(s: Sandbox) -> Guard {
    Guard(Some(s))
}

impl Guard {
    fn defuse(mut self) -> Sandbox {
        self.0
            .take()
            .expect("guard holds the sandbox until defused")
    }
}

impl std::ops::Deref for Guard {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        self.0
            .as_ref()
            .expect("guard holds the sandbox until defused")
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Sandbox {
        self.0
            .as_mut()
            .expect("guard holds the sandbox until defused")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.remove();
        }
    }
}
