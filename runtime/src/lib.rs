//! # wasipod
//!
//! Run Kubernetes `v1 Pod` manifests whose containers are WASI programs,
//! each sandboxed in its own wasmtime store, supervised like a kubelet would:
//! init containers in order, native sidecars, probes and hooks, restart
//! policy with back-off, graceful termination that cannot hang, deadlines,
//! a private virtual network per pod, and a status in Kubernetes' own shape.
//!
//! ```no_run
//! use std::time::Duration;
//! use wasipod::{PodSpec, Runtime, RuntimeConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let spec = PodSpec::from_file("pod.yaml")?;          // parse + validate
//! let pod = runtime.create_pod(spec).await?;           // compile (cached) + start
//! let mut lines = pod.subscribe_logs();                // live output, line by line
//! tokio::spawn(async move {
//!     while let Ok(l) = lines.recv().await { println!("[{}] {}", l.container, l.line) }
//! });
//! let status = pod.wait().await;                       // until Succeeded/Failed
//! println!("phase: {}", status.phase);
//! println!("{}", String::from_utf8_lossy(&pod.logs("app", false)?));
//! pod.delete(Some(Duration::ZERO)).await;             // removes its folder
//! # Ok(()) }
//! ```
//!
//! `runtime/examples/embed.rs` is a complete program (`cargo run -p wasipod
//! --example embed`).
//!
//! ## Layout
//!
//! | module | concept |
//! |---|---|
//! | [`manifest`] | wire types: Kubernetes objects as written in YAML, strict parsing |
//! | [`pod`] | validated domain types ([`PodSpec`]) and the supervisor |
//! | [`status`] | pod status, container state machine, phase and condition rules, events |
//! | `engine` | the wasmtime engine, epoch preemption, compile cache, running one guest, open-file caps |
//! | [`net`] | the pod network: `wasi:sockets` over in-memory streams, pod IPs, publishing, outbound |
//! | `probe` | probes and hook actions (exec, httpGet, tcpSocket, sleep) |
//! | `volume` | emptyDir / hostPath / configMap / secret directories and preopens |
//! | `log` | bounded per-container log files and the live line stream |
//! | [`quantity`] | Kubernetes quantities (`64Mi`, `1G`) |
//! | [`state`] | the state folder: which runtime owns which pods, reclaiming what dead runtimes left, background removal |
//!
//! ## Sandbox
//!
//! A guest sees only its mounts (preopened directories resolved with
//! cap-std: no `..`, absolute path or symlink leads out), its argv and env,
//! and clocks/random. Linear memory is capped by `resources.limits.memory`
//! (going past it ends the container `OOMKilled`, exit 137). Every store
//! yields to the scheduler at each epoch tick, so a guest in an endless loop
//! cannot starve the others, and dropping a guest's future stops it at once.
#![warn(missing_docs)]

pub mod error;
pub mod manifest;
pub mod pod;
pub mod quantity;
pub mod status;

pub mod net;
mod probe;

pub mod state;

mod engine;
mod fanout;
mod log;
mod volume;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub use engine::{CacheOrigin, CacheStats, PoolConfig};
pub use error::{FieldError, ManifestError, RuntimeError};
pub use log::{LogLine, Stream};
pub use pod::{PodSpec, RestartPolicy};
pub use status::{ContainerState, ContainerStatus, Event, EventType, PodPhase, PodStatus};

use pod::supervisor::{self, PodShared};
use status::{ConditionStatus, ConditionType};

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Disk cache of compiled images (keyed by the wasm bytes' SHA-256 and
    /// the engine configuration). `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Where pods keep their volumes and logs
    /// (`<state_dir>/pods/<namespace>_<name>_<uid>/`), and runtimes their
    /// locks (see [`state`]). `None`: a temporary
    /// directory, on tmpfs (`/dev/shm`) where there is one, removed when the
    /// runtime is dropped.
    pub state_dir: Option<PathBuf>,
    /// Multiplies every Kubernetes duration (back-off, deadlines), so that
    /// tests can run Kubernetes timings in milliseconds. 1.0 is real time.
    pub time_scale: f64,
    /// First restart delay (Kubernetes: 10 s).
    pub backoff_initial: Duration,
    /// Longest restart delay (Kubernetes: 300 s).
    pub backoff_max: Duration,
    /// A run this long resets the back-off (Kubernetes: 10 min).
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
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            state_dir: None,
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

struct RuntimeInner {
    engine: Arc<engine::Engine>,
    network: Arc<net::Network>,
    config: RuntimeConfig,
    state_dir: PathBuf,
    pods: Mutex<HashMap<(String, String), Arc<PodShared>>>,
    log_files: Arc<log::LogFiles>,
    /// This runtime's lock on the state folder (see [`state`]).
    owner: state::Owner,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        let pods: Vec<Arc<PodShared>> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for pod in pods {
            pod.delete.cancel();
            pod.net.stop.cancel();
            // A temporary state folder goes as a whole right after this.
            if self._temp.is_none() {
                dispose(&pod);
            }
        }
    }
}

/// A wasipod runtime: one wasmtime engine and compile cache, any number of
/// pods. Cheap to clone; pods stop when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Builds a runtime (engine, epoch ticker, directories).
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let (state_dir, temp) = match &config.state_dir {
            Some(d) => (d.clone(), None),
            None => {
                // Volatile state belongs in memory when the system has a
                // tmpfs for it (pod start creates a few folders and files).
                let shm = std::path::Path::new("/dev/shm");
                let base = if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                };
                let t = tempfile::Builder::new()
                    .prefix("wasipod-")
                    .tempdir_in(&base)
                    .or_else(|_| tempfile::Builder::new().prefix("wasipod-").tempdir())
                    .map_err(|e| RuntimeError::Io {
                        path: base.clone(),
                        source: e,
                    })?;
                // What runtimes that died left in the same place.
                state::reclaim_temp_dirs(&base, t.path());
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(state_dir.join("pods")).map_err(|e| RuntimeError::Io {
            path: state_dir.clone(),
            source: e,
        })?;
        let engine = Arc::new(engine::Engine::new(
            config.cache_dir.clone(),
            config.epoch_tick,
            config.pool,
            engine::FileBudget::new(config.max_open_files, config.max_open_files_total),
        )?);
        let network = net::Network::new(&config.pod_cidr, config.net_limits)?;
        let owner = state::Owner::acquire(&state_dir, config.retain_deleted_pods)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                network,
                log_files: log::LogFiles::new(config.max_open_log_files),
                config,
                state_dir,
                pods: Mutex::new(HashMap::new()),
                owner,
                _temp: temp,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Compile cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.engine.stats()
    }

    /// The wasmtime engine the pods run on (epoch interruption, the
    /// instance pool): for measuring bare wasmtime under the same settings.
    pub fn wasmtime_engine(&self) -> wasmtime::Engine {
        self.inner.engine.wasmtime().clone()
    }

    /// Reads, validates and starts the pod in a manifest file.
    pub async fn create_pod_from_file(&self, path: impl AsRef<Path>) -> Result<Pod, RuntimeError> {
        self.create_pod(PodSpec::from_file(path)?).await
    }

    /// Starts a pod: loads (or compiles) its images, then hands it to its
    /// supervisor. Returns once the pod exists; use [`Pod::wait`] or
    /// [`Pod::watch`] to follow it. Image errors name the container field.
    pub async fn create_pod(&self, spec: PodSpec) -> Result<Pod, RuntimeError> {
        let pod = self.prepare_pod(spec).await?;
        pod.start();
        Ok(pod)
    }

    /// Like [`Runtime::create_pod`] but does not start the pod: subscribe to
    /// its logs and events first, then call [`Pod::start`], and not a line
    /// of output is missed.
    pub async fn prepare_pod(&self, spec: PodSpec) -> Result<Pod, RuntimeError> {
        let key = (spec.namespace.clone(), spec.name.clone());
        if self
            .inner
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&key)
        {
            return Err(RuntimeError::AlreadyExists {
                namespace: spec.namespace,
                name: spec.name,
            });
        }
        if let Some(pool) = self.inner.engine.pool() {
            for c in spec.init_containers.iter().chain(&spec.containers) {
                if let Some(limit) = c.memory_limit
                    && limit > pool.max_memory
                {
                    return Err(RuntimeError::Limit {
                        field: format!("{}.resources.limits[memory]", c.field),
                        message: format!(
                            "{limit} bytes exceed the instance pool's memory slot of {} bytes (RuntimeConfig::pool.max_memory)",
                            pool.max_memory
                        ),
                    });
                }
            }
        }
        // Images: from memory when all are loaded and unchanged; otherwise
        // off the async threads (compiling a large guest takes a second).
        let paths: Vec<&Path> = spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .map(|c| c.image_path.as_path())
            .collect();
        let loaded = match self.inner.engine.loaded(&paths) {
            Some(images) => images
                .into_iter()
                .map(|i| (i, CacheOrigin::Memory, Duration::ZERO))
                .collect(),
            None => {
                let engine = self.inner.engine.clone();
                let wanted: Vec<(PathBuf, String)> = spec
                    .init_containers
                    .iter()
                    .chain(&spec.containers)
                    .map(|c| (c.image_path.clone(), format!("{}.image", c.field)))
                    .collect();
                tokio::task::spawn_blocking(move || {
                    wanted
                        .into_iter()
                        .map(|(path, field)| engine.load(&path, &field))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
                .map_err(|e| RuntimeError::Engine(format!("image loader: {e}")))??
            }
        };

        // Each part is checked again here, for specs built in code: the
        // folder name must never lead anywhere but into `pods/`.
        if !pod::spec::is_dns_label(&spec.namespace)
            || !pod::spec::is_dns_subdomain(&spec.name)
            || !pod::spec::is_uuid(&spec.uid)
        {
            return Err(RuntimeError::Limit {
                field: "metadata".into(),
                message: format!(
                    "namespace {:?}, name {:?} and uid {:?} must be a DNS label, a DNS subdomain and a UUID",
                    spec.namespace, spec.name, spec.uid
                ),
            });
        }
        let dir_name = format!("{}_{}_{}", spec.namespace, spec.name, spec.uid);
        let dir = self.inner.state_dir.join("pods").join(&dir_name);
        // One call on the usual path; the whole chain if `pods/` is gone.
        std::fs::create_dir(&dir)
            .or_else(|_| std::fs::create_dir_all(&dir))
            .map_err(|e| RuntimeError::Io {
                path: dir.clone(),
                source: e,
            })?;
        // A temporary state folder is reclaimed whole if this process
        // dies: its pods need no record.
        if self.inner._temp.is_none() {
            self.inner.owner.record(&dir_name);
        }

        let net = self
            .inner
            .network
            .attach(&spec.hostname, spec.outbound.clone())?;
        // Published ports: bound now, so that a taken port fails the create.
        let mut published = Vec::with_capacity(spec.publish.len());
        for m in &spec.publish {
            let listener = std::net::TcpListener::bind((m.host_ip, m.host_port))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|e| RuntimeError::Publish {
                    source_field: m.source.clone(),
                    address: SocketAddr::new(m.host_ip, m.host_port),
                    message: e.to_string(),
                })?;
            published.push((m.clone(), listener));
        }
        let now = status::now();
        let mut initial = PodStatus {
            start_time: Some(now),
            pod_ip: Some(net.ip.to_string()),
            pod_ips: vec![status::PodIp {
                ip: net.ip.to_string(),
            }],
            ..Default::default()
        };
        initial.set_condition(
            ConditionType::PodScheduled,
            ConditionStatus::True,
            None,
            None,
            now,
        );
        initial.set_condition(
            ConditionType::PodReadyToStartContainers,
            ConditionStatus::False,
            None,
            None,
            now,
        );
        for c in &spec.init_containers {
            initial.init_container_statuses.push(ContainerStatus::new(
                &c.name,
                &c.image,
                "ContainerCreating",
            ));
        }
        for c in &spec.containers {
            initial.container_statuses.push(ContainerStatus::new(
                &c.name,
                &c.image,
                "ContainerCreating",
            ));
        }
        initial.sidecars = spec
            .init_containers
            .iter()
            .filter(|c| c.sidecar)
            .map(|c| c.name.clone())
            .collect();
        initial.derive(spec.restart_policy, false, false, now);

        let mut wire = spec.wire.clone();
        wire.metadata.creation_timestamp =
            Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let (status_tx, _) = watch::channel(initial);
        let events_tx = fanout::Fanout::new(1024);
        let logs_tx = Arc::new(fanout::Fanout::new(4096));
        let (done_tx, _) = watch::channel(false);
        let images: Vec<_> = loaded.iter().map(|(img, _, _)| img.clone()).collect();
        let shared = Arc::new(PodShared {
            spec,
            images,
            engine: self.inner.engine.clone(),
            config: self.inner.config.clone(),
            dir,
            trash: self.inner.owner.trash(),
            status: status_tx,
            events: Mutex::new(Vec::new()),
            events_tx,
            logs_tx,
            log_files: self.inner.log_files.clone(),
            delete: CancellationToken::new(),
            delete_grace: Mutex::new(None),
            done: done_tx,
            sandbox: Mutex::new(None),
            started: std::sync::atomic::AtomicBool::new(false),
            net,
            controls: Mutex::new(HashMap::new()),
            terminating: CancellationToken::new(),
            kill_now: CancellationToken::new(),
        });
        {
            let mut pods = self.inner.pods.lock().unwrap_or_else(|e| e.into_inner());
            if pods.contains_key(&key) {
                return Err(RuntimeError::AlreadyExists {
                    namespace: key.0,
                    name: key.1,
                });
            }
            pods.insert(key, shared.clone());
        }

        for (m, listener) in published {
            let target = SocketAddr::new(shared.net.ip.into(), m.container_port);
            let address = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tokio::spawn(net::bridge::publish(
                Arc::downgrade(&shared.net),
                listener,
                target,
                shared.net.stop.clone(),
            ));
            shared.event(
                EventType::Normal,
                "Published",
                "pod",
                format!(
                    "Forwarding host {address} to port {} of the pod ({})",
                    m.container_port, m.source
                ),
            );
        }
        shared.event(
            EventType::Normal,
            "Scheduled",
            "pod",
            format!(
                "Successfully assigned {}/{} to wasipod",
                shared.spec.namespace, shared.spec.name
            ),
        );
        let containers = shared
            .spec
            .init_containers
            .iter()
            .chain(&shared.spec.containers);
        for (c, (image, origin, took)) in containers.zip(&loaded) {
            let image_ref = &c.image;
            let message = match origin {
                CacheOrigin::Memory => {
                    format!("Container image {image_ref:?} already present on machine")
                }
                CacheOrigin::Disk => format!(
                    "Container image {image_ref:?} ({}) loaded from the compile cache in {}",
                    image.digest,
                    supervisor::human(*took)
                ),
                CacheOrigin::Compiled => format!(
                    "Compiled container image {image_ref:?} ({}) in {}",
                    image.digest,
                    supervisor::human(*took)
                ),
            };
            shared.event(EventType::Normal, "Pulled", &PodShared::object(c), message);
        }
        Ok(Pod {
            shared,
            wire,
            runtime: self.clone(),
        })
    }

    /// Deletes every pod (grace as given) and waits until all have stopped.
    pub async fn shutdown(&self, grace: Option<Duration>) {
        let pods: Vec<Arc<PodShared>> = self
            .inner
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for pod in pods {
            delete_pod(&pod, grace).await;
        }
    }
}

async fn delete_pod(pod: &Arc<PodShared>, grace: Option<Duration>) -> PodStatus {
    if !pod.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Never started: nothing runs, nothing was created on disk but logs/.
        pod.net.stop.cancel();
        let _ = pod.done.send_replace(true);
    }
    if !pod.delete.is_cancelled() {
        *pod.delete_grace.lock().unwrap_or_else(|e| e.into_inner()) = grace;
        pod.delete.cancel();
    } else if grace == Some(Duration::ZERO) {
        // Deleting again with grace 0 cuts the termination short.
        pod.kill_now.cancel();
    }
    let mut done = pod.done.subscribe();
    let _ = done.wait_for(|d| *d).await;
    dispose(pod);
    pod.status.borrow().clone()
}

/// Takes away what a stopped pod holds on disk: its volumes and
/// `/run/wasipod` folders, and its whole folder unless
/// `retain_deleted_pods`. Each is moved aside at once and removed in the
/// background.
fn dispose(pod: &PodShared) {
    if let Some(s) = pod.sandbox.lock().unwrap_or_else(|e| e.into_inner()).take() {
        s.remove();
    }
    if !pod.config.retain_deleted_pods
        && let Some(aside) = state::move_aside(&pod.dir, &pod.trash)
    {
        state::remove_in_background(vec![aside]);
    }
}

/// Where the log of run `run` (0, 1, … as `restartCount`) of a container is
/// kept under its pod's folder ([`Pod::dir`]): `<container>/<run>.log`, the
/// kubelet's layout under `/var/log/pods/<namespace>_<name>_<uid>/`. A run
/// whose output passed `RuntimeConfig::log_max_bytes` also has `<run>.log.1`.
pub fn log_file(pod_dir: &Path, container: &str, run: u32) -> PathBuf {
    pod_dir.join(container).join(format!("{run}.log"))
}

/// A `v1 Pod` document: what `kubectl get pod -o yaml` would show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodObject {
    /// `v1`.
    pub api_version: String,
    /// `Pod`.
    pub kind: String,
    /// Metadata (with uid and creationTimestamp).
    pub metadata: manifest::ObjectMeta,
    /// The spec with defaults filled in.
    pub spec: manifest::PodSpec,
    /// The status.
    pub status: PodStatus,
}

/// A running (or finished) pod. Cheap to clone.
#[derive(Clone)]
pub struct Pod {
    shared: Arc<PodShared>,
    wire: manifest::Pod,
    runtime: Runtime,
}

impl Pod {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        &self.shared.spec.namespace
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        &self.shared.spec.uid
    }

    /// Starts a pod made by [`Runtime::prepare_pod`] (a second call does
    /// nothing). Must be called within a tokio runtime.
    pub fn start(&self) {
        if self
            .shared
            .started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let runtime = Arc::downgrade(&self.runtime.inner);
        let task_pod = self.shared.clone();
        tokio::spawn(async move {
            // A bug in the supervisor must never leave a pod that cannot be
            // deleted: a panic stops its guests (their tasks are dropped
            // with it), marks the pod Failed and finishes it.
            let supervised = tokio::spawn(supervisor::supervise(task_pod.clone())).await;
            if let Err(e) = supervised
                && e.is_panic()
            {
                tracing::error!(pod = %task_pod.spec.name, "the pod's supervisor panicked");
                supervisor::abandon(&task_pod, "InternalError", "the pod's supervisor failed");
            }
            // A pod that was deleted leaves the runtime's table.
            if task_pod.delete.is_cancelled()
                && let Some(rt) = runtime.upgrade()
            {
                let key = (task_pod.spec.namespace.clone(), task_pod.spec.name.clone());
                let mut pods = rt.pods.lock().unwrap_or_else(|e| e.into_inner());
                if pods.get(&key).is_some_and(|p| Arc::ptr_eq(p, &task_pod)) {
                    pods.remove(&key);
                }
            }
        });
    }

    /// The validated spec.
    pub fn spec(&self) -> &PodSpec {
        &self.shared.spec
    }

    /// The pod's folder (volumes, logs).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A snapshot of the status.
    pub fn status(&self) -> PodStatus {
        self.shared.status.borrow().clone()
    }

    /// Follows status changes (the latest value; intermediate ones may be
    /// skipped — [`Pod::events`] keeps every step).
    pub fn watch(&self) -> watch::Receiver<PodStatus> {
        self.shared.status.subscribe()
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.shared.events_tx.subscribe()
    }

    /// Container output from now on, line by line.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.shared.logs_tx.subscribe()
    }

    /// The log of a container's current run (or of the previous one, like
    /// `kubectl logs --previous`).
    pub fn logs(&self, container: &str, previous: bool) -> Result<Vec<u8>, RuntimeError> {
        let status = self.status();
        let cs = status
            .container(container)
            .ok_or_else(|| RuntimeError::NoSuchContainer {
                pod: self.name().to_string(),
                container: container.to_string(),
            })?;
        // Runs are numbered 0, 1, …: the latest is `restartCount`.
        let current = cs.restart_count;
        let index = if previous {
            match current.checked_sub(1) {
                Some(i) => i,
                None => {
                    return Err(RuntimeError::Io {
                        path: self.dir().join(container),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("previous terminated container \"{container}\" not found"),
                        ),
                    });
                }
            }
        } else {
            current
        };
        let path = log_file(self.dir(), container, index);
        match log::read_log(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !previous => Ok(Vec::new()),
            Err(e) => Err(RuntimeError::Io { path, source: e }),
        }
    }

    /// Waits until the pod has finished (Succeeded or Failed) and nothing of
    /// it runs any more; returns the final status.
    pub async fn wait(&self) -> PodStatus {
        let mut done = self.shared.done.subscribe();
        let _ = done.wait_for(|d| *d).await;
        self.status()
    }

    /// Deletes the pod: stops its containers (grace `None` = the pod's
    /// `terminationGracePeriodSeconds`; `Some(0)` kills at once), removes its
    /// emptyDir/configMap/secret folders and, unless
    /// [`RuntimeConfig::retain_deleted_pods`], its whole folder with the
    /// logs (moved aside at once, removed in the background), and returns
    /// the final status.
    pub async fn delete(&self, grace: Option<Duration>) -> PodStatus {
        let status = delete_pod(&self.shared, grace).await;
        let key = (
            self.shared.spec.namespace.clone(),
            self.shared.spec.name.clone(),
        );
        let mut pods = self
            .runtime
            .inner
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pods.get(&key).is_some_and(|p| Arc::ptr_eq(p, &self.shared)) {
            pods.remove(&key);
        }
        status
    }

    /// The whole `v1 Pod` document (metadata, spec with defaults, status).
    pub fn to_object(&self) -> PodObject {
        PodObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: self.wire.metadata.clone(),
            spec: self.wire.spec.clone(),
            status: self.status(),
        }
    }
}
