//! Every path under a state folder and a pod's folder, in one place.
//!
//! ```text
//! <state>/pods/<namespace>_<name>_<uid>/    a pod's folder (PodLayout)
//!     pod.json                              the front end's record of the pod (store)
//!     .volumes/<volume>/                    emptyDir (medium: Memory), configMap, secret,
//!                                           downwardAPI and projected volumes
//!     <container>/<attempt>.log             a run's log (`<attempt>.log.1`: its rotated part)
//!     <container>/run/                      the container's `/run/wasipod`
//!     <container>/root/                     the container's `/` (with `tmp/`), fresh per run
//!                                           (in the data folder with `RuntimeConfig::roots_on_disk`)
//! <data>/pods/<namespace>_<name>_<uid>/     the pod's disk storage (the same folder
//!                                           when the data folder is the state folder)
//!     .volumes/<volume>/                    emptyDir volumes of the default medium
//! <state>/runtimes/<id>.lock                which runtime owns which pods (state)
//! <state>/trash/                            folders being removed in the background
//! <state>/synthetic/{dev,etc}/              empty placeholders behind every guest's
//!                                           `/dev` and `/etc` (engine::synthetic)
//! ```
//!
//! A container name is a DNS label, so it never begins with a dot and never
//! meets `.volumes`; the kubelet keeps logs the same way under
//! `/var/log/pods/<namespace>_<name>_<uid>/<container>/<restartCount>.log`.

use std::path::{Path, PathBuf};

/// The folder holding every pod's folder.
pub fn pods_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pods")
}

/// The folder of runtime lock files.
pub(crate) fn runtimes_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runtimes")
}

/// Where folders wait for background removal.
pub(crate) fn trash_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("trash")
}

/// The paths of one pod's folder (and of its folder in the data folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLayout {
    dir: PathBuf,
    data: PathBuf,
    /// Containers' roots are in `data` (else in `dir`).
    roots_on_disk: bool,
}

impl PodLayout {
    /// The folder of pod `namespace/name` with `uid` under `state_dir`.
    /// The caller has validated the three parts (DNS label, DNS subdomain,
    /// UUID), so the name never leads anywhere but into `pods/`.
    pub fn new(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> Self {
        Self::at(pods_dir(state_dir).join(Self::folder_name(namespace, name, uid)))
    }

    /// A pod folder found on disk (its data folder taken to be the same).
    pub fn at(dir: PathBuf) -> Self {
        Self {
            data: dir.clone(),
            dir,
            roots_on_disk: false,
        }
    }

    /// The same pod with its disk storage under the data folder
    /// `data_dir` (its containers' roots too when `roots_on_disk`).
    pub fn with_data(mut self, data_dir: &Path, roots_on_disk: bool) -> Self {
        if let Some(name) = self.dir.file_name() {
            self.data = pods_dir(data_dir).join(name);
        }
        self.roots_on_disk = roots_on_disk;
        self
    }

    /// Whether containers' roots are in the data folder.
    pub(crate) fn roots_on_disk(&self) -> bool {
        self.roots_on_disk && self.data != self.dir
    }

    /// The pod's folder in the data folder.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `<namespace>_<name>_<uid>`, as the kubelet names pod log folders.
    pub fn folder_name(namespace: &str, name: &str, uid: &str) -> String {
        format!("{namespace}_{name}_{uid}")
    }

    /// The pod's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The front end's record of the pod (`pod.json`).
    pub fn record(&self) -> PathBuf {
        self.dir.join("pod.json")
    }

    /// The folder of the volumes the pod owns.
    pub(crate) fn volumes(&self) -> PathBuf {
        self.dir.join(".volumes")
    }

    /// One owned volume's folder.
    pub(crate) fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name)
    }

    /// The folder of the pod's volumes on disk.
    pub(crate) fn disk_volumes(&self) -> PathBuf {
        self.data.join(".volumes")
    }

    /// A container's folder (its logs and runtime folder).
    pub fn container(&self, container: &str) -> PathBuf {
        self.dir.join(container)
    }

    /// A container's runtime folder (`/run/wasipod` in the guest).
    pub(crate) fn run_dir(&self, container: &str) -> PathBuf {
        self.container(container).join("run")
    }

    /// A container's writable root (`/` in the guest, with `/tmp`): fresh
    /// for each run, removed with the container.
    pub(crate) fn root_dir(&self, container: &str) -> PathBuf {
        let base = if self.roots_on_disk {
            &self.data
        } else {
            &self.dir
        };
        base.join(container).join("root")
    }

    /// The log of run `attempt` (0, 1, … as `restartCount`) of a
    /// container. A run whose output passed `RuntimeConfig::log_max_bytes`
    /// also has `<attempt>.log.1`, the older part.
    pub fn log(&self, container: &str, attempt: u32) -> PathBuf {
        self.container(container).join(format!("{attempt}.log"))
    }
}
