//! Settings of a runtime ([`RuntimeConfig`]) and of its instance pool
//! ([`PoolConfig`], sized for a number of pods by [`PoolConfig::sized_for`]).

use std::path::PathBuf;
use std::time::Duration;

pub use crate::engine::PoolConfig;
use crate::net;

/// Settings of a [`Runtime`](crate::Runtime).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Disk cache of compiled images (keyed by the wasm bytes' SHA-256 and
    /// the engine configuration). `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Where pods keep their volumes and logs
    /// (`<state_dir>/pods/<namespace>_<name>_<uid>/`), and runtimes their
    /// locks (see [`state`](crate::sandbox::state)). `None`: a temporary
    /// directory, on tmpfs (`/dev/shm`) where there is one, removed when the
    /// runtime is dropped.
    pub state_dir: Option<PathBuf>,
    /// Where guests' disk storage lives: emptyDirs of the default medium
    /// (and containers' roots with [`RuntimeConfig::roots_on_disk`]), in
    /// `<data_dir>/pods/<namespace>_<name>_<uid>/`.
    /// `None`: the state folder when [`RuntimeConfig::state_dir`] is
    /// given; with a temporary state folder (on tmpfs), a temporary folder
    /// on disk (under `/var/tmp`), removed with the runtime. Guests' files
    /// in emptyDirs never fill the host's memory unless a volume asks for
    /// `medium: Memory`.
    pub data_dir: Option<PathBuf>,
    /// Containers' roots (their `/` and `/tmp`) in the data folder too,
    /// rather than in the state folder (tmpfs when temporary). Off by
    /// default: two folders made on disk per container start cost far more
    /// than on tmpfs (see the README's Resources). With it off, bound what a
    /// guest writes outside its volumes with `limits.ephemeral-storage`.
    pub roots_on_disk: bool,
    /// The longest time between two measurements of a pod's ephemeral
    /// storage (emptyDir `sizeLimit`, `limits.ephemeral-storage`), to evict
    /// a pod past a limit (the kubelet: every 10 s). Checks start 10 ms
    /// apart and come sooner while usage grows; a guest writing as fast as the disk
    /// takes can go past a limit by what it writes between two checks. Only
    /// pods with such limits are measured. Not scaled by `time_scale`.
    pub eviction_interval: Duration,
    /// Multiplies every Kubernetes duration (back-off, deadlines), so that
    /// tests can run Kubernetes timings in milliseconds. 1.0 is real time.
    pub time_scale: f64,
    /// Back-off of the second restart (Kubernetes: 10 s); the first
    /// restart of a container happens at once, as the kubelet does it.
    pub backoff_initial: Duration,
    /// Longest restart delay (Kubernetes: 300 s).
    pub backoff_max: Duration,
    /// A run longer than this forgets the back-off, so that the next
    /// restart is at once again (Kubernetes: 10 min).
    pub backoff_reset: Duration,
    /// Epoch tick: how often a running guest yields to the others.
    pub epoch_tick: Duration,
    /// Largest log file per container run before it is rotated (two files
    /// are kept).
    pub log_max_bytes: u64,
    /// Log files kept open at once across all pods; past that, the file
    /// opened longest ago is closed and reopened at its next write (a quiet
    /// container then holds no file descriptor for its log).
    pub max_open_log_files: usize,
    /// The range pod IPs come from.
    pub pod_cidr: String,
    /// Per-pod network limits (sockets, buffered bytes, backlog).
    pub net_limits: net::NetLimits,
    /// The pooling instance allocator (the default: faster starts, dense
    /// idle pods; a fixed number of guests at once, each with at most
    /// `max_memory` of linear memory), or `None` for on-demand allocation.
    pub pool: Option<PoolConfig>,
    /// Files one guest (a container's run, an exec) may hold open at once,
    /// its mounts included, like `ulimit -n` (default 1024). One more
    /// fails in the guest with `EMFILE` (wasip1) or `quota` (wasip2).
    pub max_open_files: usize,
    /// Files all guests together may hold open. `None` (the default): three
    /// quarters of the process's `RLIMIT_NOFILE`, which the runtime raises
    /// to its hard limit; the rest is kept for the runtime itself (logs,
    /// published ports, new pods).
    pub max_open_files_total: Option<usize>,
    /// Keep a deleted pod's folder (its logs and whatever a front end
    /// recorded there) instead of removing it with the pod, as the kubelet
    /// does. Volumes and `/run/wasipod` folders are removed either way.
    pub retain_deleted_pods: bool,
    /// Pods outlive the runtime, as a kubelet's outlive a node restart:
    /// each pod's record (`pod.json`, see [`store`](crate::store)) is saved
    /// on every change; a runtime that stops ([`Runtime::stop`](crate::Runtime::stop))
    /// or dies leaves its pods' folders with their records and logs (the
    /// next runtime on the state folder removes only their volumes, roots
    /// and `/run/wasipod` folders), for
    /// [`Runtime::restore_pod`](crate::Runtime::restore_pod) to bring them
    /// back. A deleted pod's folder goes as usual.
    pub keep_records: bool,
    /// The node's name, as events name it (`Successfully assigned
    /// default/web to <node>`). Default `wasipod`.
    pub node_name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            state_dir: None,
            data_dir: None,
            roots_on_disk: false,
            eviction_interval: Duration::from_millis(100),
            time_scale: 1.0,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            backoff_reset: Duration::from_secs(600),
            epoch_tick: Duration::from_millis(10),
            log_max_bytes: 10 << 20,
            max_open_log_files: 1024,
            pod_cidr: "10.88.0.0/16".into(),
            net_limits: net::NetLimits::default(),
            pool: Some(PoolConfig::default()),
            max_open_files: 1024,
            max_open_files_total: None,
            retain_deleted_pods: false,
            keep_records: false,
            node_name: "wasipod".into(),
        }
    }
}

impl RuntimeConfig {
    /// Sets [`RuntimeConfig::cache_dir`].
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Sets [`RuntimeConfig::state_dir`].
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Sets [`RuntimeConfig::time_scale`].
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// The default cache folder: `$XDG_CACHE_HOME/wasipod` or `~/.cache/wasipod`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|p| p.join("wasipod"))
    }

    /// The default state folder: `$XDG_STATE_HOME/wasipod` or `~/.local/state/wasipod`.
    pub fn default_state_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .map(|p| p.join("wasipod"))
    }
}
