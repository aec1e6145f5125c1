//! The pod's volumes on the host, and the preopened directories each
//! container gets from them.
//!
//! - `emptyDir`: `<pod dir>/.volumes/<name>/`, created with the pod and
//!   removed when the pod is deleted.
//! - `hostPath`: the host folder itself (never removed).
//! - `configMap` / `secret`: the keys written as files under
//!   `<pod dir>/.volumes/<name>/`, always mounted read-only.
//! - each container's `/run/wasipod`: `<pod dir>/<container>/run/`, and its
//!   root: `<pod dir>/<container>/root/`, next to the container's logs (see
//!   [`layout`](super::layout)).
//!
//! A guest reaches only its preopens: wasmtime-wasi resolves every path
//! with cap-std, which refuses `..`, absolute paths and symlinks that lead
//! out. `subPath` is resolved the same way on the host, so a symlink planted
//! in a volume cannot redirect a mount outside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::layout::PodLayout;
use crate::engine::{HostDir, Preopen};
use crate::error::RuntimeError;
use crate::spec::{MountSpec, VolumeSource, VolumeSpec};

/// The host side of a pod's volumes.
#[derive(Debug)]
pub(crate) struct Volumes {
    /// Host directory of each volume, by index in the pod's volumes.
    roots: Vec<PathBuf>,
    /// Host folders added after the pod's volumes were made (the bind
    /// mounts of containers created through containerd), indexed after
    /// `roots`.
    added: std::sync::Mutex<Vec<PathBuf>>,
    /// The folders of the volumes the pod owns, made on demand and removed
    /// on cleanup: `<pod dir>/.volumes` (in the state folder: memory
    /// emptyDirs and files) and `<pod data dir>/.volumes` (on disk:
    /// emptyDirs), each with the trash of its file system.
    owned: [Owned; 2],
}

#[derive(Debug)]
struct Owned {
    dir: PathBuf,
    made: bool,
    /// Where removed folders go before they are removed in the background.
    trash: PathBuf,
}

fn io_err(field: &str, what: &Path, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Volume {
        field: field.to_string(),
        message: format!("{}: {e}", what.display()),
    }
}

impl Volumes {
    /// Creates the pod's volumes in its folders (`trashes`: the state
    /// folder's and the data folder's).
    pub(crate) fn prepare(
        volumes: &[VolumeSpec],
        layout: &PodLayout,
        trashes: [PathBuf; 2],
    ) -> Result<Self, RuntimeError> {
        // Every file-system call counts on the start path (a few µs each):
        // folders are made one level at a time, only those that are needed.
        let [trash, data_trash] = trashes;
        let sandbox = Volumes {
            roots: Vec::new(),
            added: Default::default(),
            owned: [
                Owned {
                    dir: layout.volumes(),
                    made: false,
                    trash,
                },
                Owned {
                    dir: layout.disk_volumes(),
                    made: false,
                    trash: data_trash,
                },
            ],
        };
        let mut sandbox = scopeguard(sandbox);
        let same = layout.data() == layout.dir();
        for vol in volumes {
            let root = match &vol.source {
                VolumeSource::EmptyDir { memory, .. } => {
                    let on_disk = !memory && !same;
                    sandbox.make_owned(usize::from(on_disk))?;
                    let dir = if on_disk {
                        layout.disk_volumes().join(&vol.name)
                    } else {
                        layout.volume(&vol.name)
                    };
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
                    sandbox.make_owned(0)?;
                    let dir = layout.volume(&vol.name);
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

    /// The preopens of one container (`field`: its field path, for
    /// messages): its root (`/`, unless a volume is mounted there), its
    /// mounts, and its working directory. `subPath`, `workingDir` and the
    /// root's `/tmp` are opened inside their folder by cap-std (see
    /// [`HostDir::Open`]): the guest may have replaced any of them with a
    /// symlink by the time an exec opens them again.
    ///
    /// WASI has no current directory: wasi-libc resolves relative paths
    /// through a preopen named `"."`, which also takes every absolute path
    /// that no longer preopen matches. So, when the working directory is
    /// not the root, the root's `/tmp` gets a preopen of its own (and so
    /// does a working directory in the root, at its absolute path): `/tmp`
    /// stays the root's, and other absolute paths outside the mounts land
    /// in the working directory.
    pub(crate) fn preopens(
        &self,
        mounts: &[MountSpec],
        working_dir: Option<&str>,
        working_dir_mount: Option<&(usize, String)>,
        root: Option<&ContainerRoot>,
        field: &str,
    ) -> Result<Vec<Preopen>, RuntimeError> {
        let mut out = Vec::with_capacity(mounts.len() + 3);
        if let Some(root) = root {
            out.push(Preopen {
                host: HostDir::Path(root.path.clone()),
                guest: "/".into(),
                read_only: root.read_only,
            });
        }
        for m in mounts {
            let root = &self.root(m.volume).ok_or_else(|| RuntimeError::Volume {
                field: m.field.clone(),
                message: format!("no volume {}", m.volume),
            })?;
            let host = match &m.sub_path {
                None => HostDir::Path(root.clone()),
                Some(sub) => {
                    let field = format!("{}.subPath", m.field);
                    let dir = Dir::open_ambient_dir(root, ambient_authority())
                        .map_err(|e| io_err(&field, root, e))?;
                    HostDir::Open(Arc::new(open_inside(&dir, sub, &field)?))
                }
            };
            out.push(Preopen {
                host,
                guest: m.mount_path.clone(),
                read_only: m.read_only,
            });
        }
        let wd_field = || format!("{field}.workingDir");
        let cwd = match (working_dir_mount, working_dir, root) {
            (Some((index, rest)), _, _) => {
                // The mounts follow the root's preopen, when there is one.
                let mount = &out[*index + usize::from(root.is_some())];
                let host = if rest.is_empty() {
                    mount.host.clone()
                } else {
                    let within = mount.host.open().map_err(|e| RuntimeError::Volume {
                        field: wd_field(),
                        message: e.to_string(),
                    })?;
                    HostDir::Open(Arc::new(open_inside(&within, rest, &wd_field())?))
                };
                Some((host, mount.read_only))
            }
            (None, Some(wd), Some(root)) => {
                let rest = wd.trim_start_matches('/');
                (!rest.is_empty())
                    .then(|| {
                        let dir = root.open(&wd_field())?;
                        Ok::<_, RuntimeError>((
                            HostDir::Open(Arc::new(open_inside(&dir, rest, &wd_field())?)),
                            root.read_only,
                        ))
                    })
                    .transpose()?
            }
            _ => None,
        };
        if let Some((host, read_only)) = cwd {
            // A working directory in the root is also reached by its own
            // absolute path (which "." would otherwise take).
            if working_dir_mount.is_none()
                && let Some(wd) = working_dir
            {
                out.push(Preopen {
                    host: host.clone(),
                    guest: wd.to_string(),
                    read_only,
                });
            }
            if let Some(root) = root
                && !mounts.iter().any(|m| m.mount_path == "/tmp")
            {
                let dir = root.open(field)?;
                out.push(Preopen {
                    host: HostDir::Open(Arc::new(open_inside(&dir, "tmp", field)?)),
                    guest: "/tmp".into(),
                    read_only: root.read_only,
                });
            }
            out.push(Preopen {
                host,
                guest: ".".into(),
                read_only,
            });
        }
        Ok(out)
    }

    /// The last `max` bytes of the regular file at the guest path `path`
    /// of a container with these mounts and root (how a custom
    /// `terminationMessagePath` is read after the run). Opened through
    /// cap-std inside the mount or root that holds it, never following a
    /// link out of it, without blocking on a FIFO; `None` when there is no
    /// such file.
    pub(crate) fn read_tail(
        &self,
        mounts: &[MountSpec],
        root: Option<&ContainerRoot>,
        path: &str,
        max: usize,
    ) -> Option<Vec<u8>> {
        use cap_std::fs::OpenOptionsExt;
        use std::io::{Read, Seek, SeekFrom};
        let within = |base: &str| {
            let base = base.trim_end_matches('/');
            path.strip_prefix(base)
                .filter(|rest| rest.starts_with('/'))
                .map(|rest| rest.trim_start_matches('/'))
        };
        let mount = mounts
            .iter()
            .filter_map(|m| Some((m, within(&m.mount_path)?)))
            .max_by_key(|(m, _)| m.mount_path.len());
        let (dir, rest) = match mount {
            Some((m, rest)) => {
                let dir = Dir::open_ambient_dir(self.root(m.volume)?, ambient_authority()).ok()?;
                match &m.sub_path {
                    Some(sub) => (dir.open_dir(sub).ok()?, rest),
                    None => (dir, rest),
                }
            }
            None => (root?.open("").ok()?, path.trim_start_matches('/')),
        };
        let mut file = dir
            .open_with(
                rest,
                cap_std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK),
            )
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let skip = meta.len().saturating_sub(max as u64);
        file.seek(SeekFrom::Start(skip)).ok()?;
        let mut out = Vec::new();
        file.take(max as u64).read_to_end(&mut out).ok()?;
        Some(out)
    }

    /// New folders for a container's next run (`first`: its first run,
    /// when the container's folder does not exist yet): an empty runtime
    /// folder (the guest's `/run/wasipod`), and, when `root` is asked for,
    /// an empty root holding `tmp/`. What the last run left is moved aside
    /// and removed in the background: a restarted container starts from a
    /// fresh root, as a restarted Kubernetes container gets a fresh
    /// writable layer. `trash` and `root_trash` are the trashes on the
    /// runtime folder's and the root's file systems.
    pub(crate) fn fresh_dirs(
        layout: &PodLayout,
        container: &str,
        first: bool,
        root: Option<bool>,
        trash: &Path,
        root_trash: &Path,
    ) -> Result<ContainerDirs, RuntimeError> {
        let run = layout.run_dir(container);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| RuntimeError::Io { path, source: e }
        };
        if first {
            // The container's folder (its logs, run/) is new with the pod.
            if let Some(parent) = run.parent() {
                std::fs::create_dir(parent)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => std::fs::create_dir_all(parent),
                    })
                    .map_err(io(parent))?;
            }
        }
        let mut aside = Vec::new();
        fresh_dir(&run, trash, &mut aside).map_err(io(&run))?;
        let root = match root {
            None => None,
            Some(read_only) => {
                let path = layout.root_dir(container);
                if first
                    && layout.roots_on_disk()
                    && let Some(parent) = path.parent()
                {
                    // The container's folder in the data folder.
                    std::fs::create_dir(parent)
                        .or_else(|e| match e.kind() {
                            std::io::ErrorKind::AlreadyExists => Ok(()),
                            _ => std::fs::create_dir_all(parent),
                        })
                        .map_err(io(parent))?;
                }
                fresh_dir(&path, root_trash, &mut aside).map_err(io(&path))?;
                let tmp = path.join("tmp");
                std::fs::create_dir(&tmp).map_err(io(&tmp))?;
                Some(ContainerRoot { path, read_only })
            }
        };
        crate::sandbox::state::remove_in_background(aside);
        Ok(ContainerDirs {
            run_dir: RunDir(run),
            root,
        })
    }

    /// Makes owned folder `i` (0: state, 1: data) unless it was made.
    fn make_owned(&mut self, i: usize) -> Result<(), RuntimeError> {
        let o = &mut self.owned[i];
        if !o.made {
            std::fs::create_dir(&o.dir)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => std::fs::create_dir_all(&o.dir),
                    _ => Err(e),
                })
                .map_err(|e| io_err("spec.volumes", &o.dir, e))?;
            o.made = true;
        }
        Ok(())
    }

    /// The host folder of volume `index` (as the pod's volumes list them).
    pub(crate) fn host_dir(&self, index: usize) -> Option<PathBuf> {
        self.root(index)
    }

    fn root(&self, index: usize) -> Option<PathBuf> {
        match self.roots.get(index) {
            Some(root) => Some(root.clone()),
            None => crate::sync::lock(&self.added)
                .get(index - self.roots.len())
                .cloned(),
        }
    }

    /// Adds a host folder as a volume (`field` names it in errors) and
    /// returns its index: a bind mount of a container created after the
    /// sandbox. It must be a directory (a WASI mount is one).
    pub(crate) fn add_host_dir(&self, path: &Path, field: &str) -> Result<usize, RuntimeError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RuntimeError::Volume {
                    field: field.to_string(),
                    message: format!(
                        "{}: not a directory (a WASI mount is a directory)",
                        path.display()
                    ),
                });
            }
            Err(e) => return Err(io_err(field, path, e)),
        }
        let mut added = crate::sync::lock(&self.added);
        added.push(path.to_path_buf());
        Ok(self.roots.len() + added.len() - 1)
    }

    /// Removes what the pod owns (emptyDirs, configMap/secret files);
    /// host paths are left alone.
    pub(crate) fn remove(&self) {
        let mut aside = Vec::new();
        for o in &self.owned {
            if o.made {
                remove_tree(&o.dir, &o.trash, &mut aside);
            }
        }
        crate::sandbox::state::remove_in_background(aside);
    }
}

/// Makes `dir` an empty folder: what is there (a restarted container's
/// last run) joins `aside`, moved out of the way by one rename.
fn fresh_dir(dir: &Path, trash: &Path, aside: &mut Vec<PathBuf>) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            remove_tree(dir, trash, aside);
            std::fs::create_dir(dir)
        }
        Err(e) => Err(e),
    }
}

/// The folders [`Volumes::fresh_dirs`] makes for one run of a container.
pub(crate) struct ContainerDirs {
    /// The runtime folder.
    pub(crate) run_dir: RunDir,
    /// The root, unless a volume is mounted at `/`.
    pub(crate) root: Option<ContainerRoot>,
}

/// A container's root on the host.
#[derive(Debug, Clone)]
pub(crate) struct ContainerRoot {
    /// Its folder (every component of which is the runtime's).
    pub(crate) path: PathBuf,
    /// `securityContext.readOnlyRootFilesystem`.
    pub(crate) read_only: bool,
}

impl ContainerRoot {
    fn open(&self, field: &str) -> Result<Dir, RuntimeError> {
        Dir::open_ambient_dir(&self.path, ambient_authority())
            .map_err(|e| io_err(field, &self.path, e))
    }
}

/// A container's runtime folder (`/run/wasipod` in the guest), as the
/// runtime touches it: through cap-std, so that nothing the guest puts
/// inside (a symlink, a FIFO, a folder) is ever followed, opened or blocked
/// on by the runtime. The folder itself is opened by path when needed (no
/// descriptor is held while the container runs): every component of that
/// path is the runtime's, since the guest's root is the folder itself.
pub(crate) struct RunDir(pub(crate) PathBuf);

impl RunDir {
    fn open(&self) -> std::io::Result<Dir> {
        Dir::open_ambient_dir(&self.0, ambient_authority())
    }

    /// Whether an entry of this name exists, of any type (a symlink is
    /// not followed).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.open().is_ok_and(|d| d.symlink_metadata(name).is_ok())
    }

    /// Makes `name` a regular file holding `bytes`, replacing whatever
    /// entry the guest left there: the bytes go to a new file (created
    /// exclusively, so never through a symlink or into a FIFO), which is
    /// then renamed over the name (a rename replaces a symlink, it does not
    /// follow it).
    pub(crate) fn place(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let dir = self.open()?;
        let mut last = None;
        for attempt in 0..8 {
            let tmp = format!(".wasipod-{}-{attempt}", uuid::Uuid::new_v4().simple());
            let mut options = cap_std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            let written = dir
                .open_with(&tmp, &options)
                .and_then(|mut f| f.write_all(bytes));
            if let Err(e) = written {
                let _ = dir.remove_file(&tmp);
                last = Some(e);
                continue;
            }
            match dir.rename(&tmp, &dir, name) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // A folder (or anything a rename cannot replace) is in
                    // the way: removed without following links, then again.
                    let _ = dir.remove_dir_all(name);
                    if dir.rename(&tmp, &dir, name).is_ok() {
                        return Ok(());
                    }
                    let _ = dir.remove_file(&tmp);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("the entry kept changing")))
    }
}

/// Removes a folder and what it holds: an empty one (the usual runtime
/// folder) with a single call; a full one is moved aside into `trash` (one
/// rename, however many files a guest made) and joins `aside`, to be
/// removed in the background.
pub(crate) fn remove_tree(dir: &Path, trash: &Path, aside: &mut Vec<PathBuf>) {
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => aside.extend(crate::sandbox::state::move_aside(dir, trash)),
    }
}

/// Creates (if needed) and opens the folder `sub` inside `root`, resolved by
/// cap-std: no `..`, absolute path or symlink leads outside `root`, and the
/// handle returned is the folder itself, whatever the path becomes later.
fn open_inside(root: &Dir, sub: &str, field: &str) -> Result<Dir, RuntimeError> {
    root.create_dir_all(sub).map_err(|e| RuntimeError::Volume {
        field: field.to_string(),
        message: format!("{sub:?}: cannot be created inside the volume: {e}"),
    })?;
    root.open_dir(sub).map_err(|e| RuntimeError::Volume {
        field: field.to_string(),
        message: match e.kind() {
            std::io::ErrorKind::NotADirectory => {
                format!("{sub:?}: not a directory (a WASI mount is a directory)")
            }
            _ => format!("{sub:?}: leads outside its volume or cannot be opened: {e}"),
        },
    })
}

/// Removes the half-made sandbox if preparation fails.
struct Guard(Option<Volumes>);

fn scopeguard(s: Volumes) -> Guard {
    Guard(Some(s))
}

impl Guard {
    fn defuse(mut self) -> Volumes {
        self.0
            .take()
            .expect("guard holds the sandbox until defused")
    }
}

impl std::ops::Deref for Guard {
    type Target = Volumes;
    fn deref(&self) -> &Volumes {
        self.0
            .as_ref()
            .expect("guard holds the sandbox until defused")
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Volumes {
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
