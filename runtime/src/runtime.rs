//! [`Runtime`]: the registry of a process's pods — create, get, list,
//! watch, delete — over one [`Node`]; and [`Pod`], a handle on one of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::api::manifest;
use crate::api::status::{
    self, ConditionStatus, ConditionType, ContainerStatus, Event, EventReason, EventType, PodEvent,
    PodStatus, WaitingReason,
};
use crate::config::RuntimeConfig;
use crate::engine::{CacheOrigin, CacheStats};
use crate::error::{ManifestError, RuntimeError};
use crate::fanout::Fanout;
use crate::kubelet::clock::human;
use crate::kubelet::lifecycle::Lifecycle;
use crate::kubelet::restore::{self, Restore};
use crate::kubelet::status::{StatusWriter, object};
use crate::kubelet::{PodShared, worker};
use crate::log::{LogLine, LogOptions};
use crate::sandbox::{Node, PodSandbox, SandboxConfig};
use crate::spec::PodSpec;
use crate::sync::lock;

type Key = (String, String);

/// How often a followed log is checked for new output.
const LOG_POLL: Duration = Duration::from_millis(50);

struct RuntimeInner {
    node: Arc<Node>,
    pods: Mutex<HashMap<Key, Pod>>,
    /// Changes of every pod, to [`Runtime::watch`].
    changes: Fanout<PodChange>,
    /// Set by [`Runtime::stop`]: records keep what pods were before it.
    records_frozen: AtomicBool,
    /// Events of every pod, to [`Runtime::watch_events`].
    events: Arc<Fanout<PodEvent>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        let pods: Vec<Pod> = lock(&self.pods).drain().map(|(_, p)| p).collect();
        // Kept records show each pod as it is now (a change the pod's
        // forwarder has not saved yet is not lost).
        if self.node.config().keep_records && !self.records_frozen.load(Ordering::SeqCst) {
            for pod in &pods {
                let _ = crate::store::save(pod.dir(), &pod.to_object());
            }
        }
        for pod in pods {
            pod.shared.transition(|l| l.delete(Duration::ZERO));
            pod.shared.sandbox.stop();
            // A temporary state folder goes as a whole with the node; kept
            // records stay for the next runtime.
            if self.node.config().keep_records {
                pod.shared.sandbox.release();
            } else if !self.node.is_temporary() {
                pod.shared.sandbox.remove();
            }
        }
        self.node.remove_temporary_state();
    }
}

/// A change to one of a runtime's pods, as a Kubernetes watch reports it.
#[derive(Debug, Clone)]
pub enum PodChange {
    /// A pod was created.
    Added(Box<PodObject>),
    /// A pod's status changed.
    Modified(Box<PodObject>),
    /// A pod was deleted and has stopped.
    Deleted(Box<PodObject>),
}

/// A wasipod runtime: one [`Node`] (wasmtime engine, compile cache, pod
/// network, state folder) and a registry of pods. Cheap to clone; pods
/// stop when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Builds a runtime (engine, epoch ticker, directories).
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                node: Node::new(&config)?,
                pods: Mutex::new(HashMap::new()),
                changes: Fanout::new(1024),
                records_frozen: AtomicBool::new(false),
                events: Arc::new(Fanout::new(4096)),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        self.inner.node.config()
    }

    /// The node the pods run on (for the sandbox layer).
    pub fn node(&self) -> &Arc<Node> {
        &self.inner.node
    }

    /// Compile cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.node.cache_stats()
    }

    /// The wasmtime engine the pods run on (epoch interruption, the
    /// instance pool): for measuring bare wasmtime under the same settings.
    pub fn wasmtime_engine(&self) -> wasmtime::Engine {
        self.inner.node.wasmtime_engine().clone()
    }

    /// Reads, validates and starts the pod in a manifest file.
    pub async fn create_pod_from_file(&self, path: impl AsRef<Path>) -> Result<Pod, RuntimeError> {
        self.create_pod(PodSpec::from_file(path)?).await
    }

    /// Starts a pod: loads (or compiles) its images, then hands it to its
    /// worker. Returns once the pod exists; use [`Pod::wait`] or
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
        self.prepare(spec, Origin::New).await
    }

    /// Brings back a pod an earlier runtime on the same state folder
    /// recorded ([`RuntimeConfig::keep_records`]; see [`store::list`](crate::store::list)),
    /// as the kubelet does after a node restart. `spec` is the record's
    /// pod (its uid, names and creation time), validated again by the
    /// caller; its images are resolved here, only if it runs again.
    ///
    /// - A pod that was being deleted is removed with its folder: `None`.
    /// - A finished pod comes back as it ended (status, logs); nothing runs.
    /// - A pod that was running runs again in a new sandbox (a new pod IP):
    ///   init containers first, each container's `restartCount` one more
    ///   than recorded when it starts, the cut-short run shown as its
    ///   `lastState` (exit code 255, reason `Unknown`) and its log kept as
    ///   the previous one; under `restartPolicy: Never` it ends `Failed`
    ///   instead (unless none of its containers had started yet).
    ///
    /// Events of the earlier runtime are not kept.
    pub async fn restore_pod(
        &self,
        mut spec: PodSpec,
        recorded: &PodObject,
    ) -> Result<Option<Pod>, RuntimeError> {
        let deleting = recorded.metadata.deletion_timestamp.is_some();
        match restore::decide(&spec, recorded.status.clone(), deleting, status::now()) {
            Restore::Remove => {
                self.inner
                    .node
                    .discard_pod_folder(&spec.namespace, &spec.name, &spec.uid);
                Ok(None)
            }
            Restore::Finished(status) => {
                Ok(Some(self.prepare(spec, Origin::Finished(status)).await?))
            }
            Restore::Restart(status) => {
                spec.resolve_images(&crate::spec::LocalFiles)
                    .map_err(|errors| ManifestError::Invalid {
                        source_name: spec.source.clone(),
                        pod: spec.name.clone(),
                        errors,
                    })?;
                let pod = self.prepare(spec, Origin::Restarted(status)).await?;
                pod.start();
                Ok(Some(pod))
            }
        }
    }

    /// Makes a pod, new or restored, without starting it.
    ///
    /// Steps: refuse a name in use and memory limits beyond the pool's
    /// slots; load the images (none for a finished pod); run the sandbox
    /// (folder, pod IP, published ports — none for a finished pod); the
    /// status to start from; register the pod; its first events
    /// (`Scheduled`, or `SandboxChanged` for a restored pod, then `Pulled`
    /// and `Published`); its record.
    async fn prepare(&self, spec: PodSpec, origin: Origin) -> Result<Pod, RuntimeError> {
        let scheduled = chrono::Utc::now();
        let key = (spec.namespace.clone(), spec.name.clone());
        if lock(&self.inner.pods).contains_key(&key) {
            return Err(RuntimeError::AlreadyExists {
                namespace: spec.namespace,
                name: spec.name,
            });
        }
        let finished = matches!(origin, Origin::Finished(_));
        let loaded = if finished {
            Vec::new()
        } else {
            self.check_limits(&spec)?;
            let wanted = spec
                .init_containers
                .iter()
                .chain(&spec.containers)
                .map(|c| (c.image_path.clone(), format!("{}.image", c.field)))
                .collect();
            self.inner.node.load_images(wanted).await?
        };
        let mut sandbox_config = SandboxConfig::from(&spec);
        if finished {
            sandbox_config.publish.clear();
        }
        let sandbox = PodSandbox::run(&self.inner.node, sandbox_config)?;
        let now = status::now();
        let mut wire = spec.wire.clone();
        let (initial, restored) = match origin {
            Origin::New => (initial_status(&spec, &sandbox, now), false),
            Origin::Restarted(mut s) => {
                let ip = sandbox.ip().to_string();
                s.pod_ip = Some(ip.clone());
                s.pod_ips = vec![status::PodIp { ip }];
                (s, true)
            }
            Origin::Finished(s) => (s, true),
        };
        if !restored || wire.metadata.creation_timestamp.is_none() {
            wire.metadata.creation_timestamp =
                Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        let images = loaded.iter().map(|l| l.image.clone()).collect();
        let status = StatusWriter::new(spec.restart_policy, initial).with_feed(
            self.inner.events.clone(),
            &spec.namespace,
            &spec.name,
            &spec.uid,
        );
        let config = self.inner.node.config().clone();
        let shared = Arc::new(PodShared::new(spec, images, config, sandbox, status));
        if finished {
            shared.transition(|_| Lifecycle::Terminated { deleted: false });
        }
        let pod = Pod {
            shared: shared.clone(),
            wire: Arc::new(wire),
            runtime: Arc::downgrade(&self.inner),
        };
        {
            let mut pods = lock(&self.inner.pods);
            if pods.contains_key(&key) {
                shared.sandbox.remove();
                return Err(RuntimeError::AlreadyExists {
                    namespace: key.0,
                    name: key.1,
                });
            }
            pods.insert(key, pod.clone());
        }
        if self.inner.changes.has_subscribers() {
            self.inner
                .changes
                .send(PodChange::Added(Box::new(pod.to_object())));
        }
        if !finished {
            first_events(&shared, scheduled, restored, &loaded);
        }
        pod.save_record();
        Ok(pod)
    }

    /// Memory limits beyond the instance pool's slots are refused at
    /// create, naming their field.
    fn check_limits(&self, spec: &PodSpec) -> Result<(), RuntimeError> {
        let Some(pool) = self.inner.node.pool() else {
            return Ok(());
        };
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
        Ok(())
    }

    /// The pod `namespace/name`, if this runtime has it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Pod> {
        lock(&self.inner.pods)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every pod (of `namespace`, or of all namespaces), sorted by
    /// namespace and name.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Pod> {
        let mut pods: Vec<Pod> = lock(&self.inner.pods)
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, p)| p.clone())
            .collect();
        pods.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        pods
    }

    /// Changes of every pod from now on: added, modified (each status
    /// change), deleted (once stopped).
    pub fn watch(&self) -> broadcast::Receiver<PodChange> {
        self.inner.changes.subscribe()
    }

    /// Events of every pod from now on (what [`Pod::subscribe_events`]
    /// gives of one), each with its pod.
    pub fn watch_events(&self) -> broadcast::Receiver<PodEvent> {
        self.inner.events.subscribe()
    }

    /// Deletes the pod `namespace/name` (see [`Pod::delete`]).
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        grace: Option<Duration>,
    ) -> Result<PodStatus, RuntimeError> {
        let pod = self
            .get(namespace, name)
            .ok_or_else(|| RuntimeError::NotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })?;
        Ok(pod.delete(grace).await)
    }

    /// Deletes every pod (grace as given) and waits until all have stopped.
    /// Pods terminate together: the longest grace period bounds the wait.
    pub async fn shutdown(&self, grace: Option<Duration>) {
        let mut all = tokio::task::JoinSet::new();
        for pod in self.list(None) {
            all.spawn(async move { pod.delete(grace).await });
        }
        while all.join_next().await.is_some() {}
    }

    /// Stops every pod and keeps it for a later runtime, as a node going
    /// down does ([`RuntimeConfig::keep_records`]; the daemon's graceful
    /// stop): [`Runtime::restore_pod`] brings each back.
    ///
    /// Steps: save and freeze the records (they keep each pod as it was
    /// before the stop, so that a running pod runs again); give every pod its
    /// termination sequence together (grace as given, `None`: each pod's
    /// own); then take away each pod's volatile parts, keeping its folder
    /// with the record and logs.
    pub async fn stop(&self, grace: Option<Duration>) {
        let pods = self.list(None);
        if self.config().keep_records {
            for pod in &pods {
                pod.save_record();
            }
        }
        self.inner.records_frozen.store(true, Ordering::SeqCst);
        let mut all = tokio::task::JoinSet::new();
        for pod in pods {
            all.spawn(async move {
                let grace = grace.unwrap_or(pod.shared.spec.termination_grace_period);
                pod.shared.transition(|l| l.delete(grace));
                pod.shared.terminated().await;
                if pod.shared.config.keep_records {
                    pod.shared.sandbox.release();
                } else {
                    pod.shared.sandbox.remove();
                }
            });
        }
        while all.join_next().await.is_some() {}
    }
}

/// What a pod is made from.
enum Origin {
    /// A new pod.
    New,
    /// A recorded pod that runs again, from this status.
    Restarted(PodStatus),
    /// A recorded pod that had finished, with its final status.
    Finished(PodStatus),
}

/// A pod's first events, at the times things happened: scheduled when
/// asked for (or, for a restored pod, its sandbox changed), each image
/// pulled (loaded or compiled, in parallel) after it, its published ports.
fn first_events(
    shared: &PodShared,
    scheduled: status::Time,
    restored: bool,
    loaded: &[crate::sandbox::LoadedImage],
) {
    let first = if restored {
        (
            EventReason::SandboxChanged,
            "Pod sandbox changed, it will be killed and re-created.".to_string(),
        )
    } else {
        (
            EventReason::Scheduled,
            format!(
                "Successfully assigned {}/{} to {}",
                shared.spec.namespace, shared.spec.name, shared.config.node_name
            ),
        )
    };
    let mut events = vec![(scheduled, first.0, "pod".to_string(), first.1)];
    let containers = shared
        .spec
        .init_containers
        .iter()
        .chain(&shared.spec.containers);
    for (c, l) in containers.zip(loaded) {
        let image_ref = &c.image;
        if l.origin != CacheOrigin::Memory {
            events.push((
                l.started_at,
                EventReason::Pulling,
                object(c),
                format!("Pulling image {image_ref:?}"),
            ));
        }
        let message = match l.origin {
            CacheOrigin::Memory => {
                format!("Container image {image_ref:?} already present on machine")
            }
            CacheOrigin::Disk => format!(
                "Container image {image_ref:?} ({}) loaded from the compile cache in {}",
                l.image.digest(),
                human(l.took)
            ),
            CacheOrigin::Compiled => format!(
                "Compiled container image {image_ref:?} ({}) in {}",
                l.image.digest(),
                human(l.took)
            ),
        };
        events.push((l.finished_at, EventReason::Pulled, object(c), message));
    }
    for p in shared.sandbox.published() {
        events.push((
            status::now(),
            EventReason::Published,
            "pod".to_string(),
            format!(
                "Forwarding host {} to port {} of the pod ({})",
                p.address, p.mapping.container_port, p.mapping.source
            ),
        ));
    }
    events.sort_by_key(|(time, ..)| *time);
    for (time, reason, object, message) in events {
        shared
            .status
            .event_at(time, EventType::Normal, reason, &object, message);
    }
}

/// The status of a pod whose sandbox is ready: scheduled, its address, its
/// containers waiting to be created.
fn initial_status(spec: &PodSpec, sandbox: &PodSandbox, now: status::Time) -> PodStatus {
    let ip = sandbox.ip().to_string();
    let mut initial = PodStatus {
        start_time: Some(now),
        pod_ip: Some(ip.clone()),
        pod_ips: vec![status::PodIp { ip }],
        qos_class: Some(spec.qos_class.as_str().to_string()),
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
    let waiting = |c: &crate::spec::ContainerSpec| {
        ContainerStatus::new(&c.name, &c.image, WaitingReason::ContainerCreating)
    };
    initial.init_container_statuses = spec.init_containers.iter().map(waiting).collect();
    initial.container_statuses = spec.containers.iter().map(waiting).collect();
    initial.sidecars = spec
        .init_containers
        .iter()
        .filter(|c| c.sidecar)
        .map(|c| c.name.clone())
        .collect();
    initial.derive(spec.restart_policy, false, false, now);
    initial
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

/// A pod of a [`Runtime`] (running or finished). Cheap to clone.
#[derive(Clone)]
pub struct Pod {
    shared: Arc<PodShared>,
    wire: Arc<manifest::Pod>,
    runtime: Weak<RuntimeInner>,
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
        let mut started = false;
        self.shared.lifecycle.send_if_modified(|l| match l.start() {
            Ok(next) => {
                *l = next;
                started = true;
                true
            }
            Err(_) => false,
        });
        if !started {
            return;
        }
        let pod = self.clone();
        tokio::spawn(async move {
            let shared = pod.shared.clone();
            // A bug in the worker must never leave a pod that cannot be
            // deleted: a panic stops its guests (their tasks are dropped
            // with it), marks the pod Failed and finishes it.
            // Subscribed before the worker runs: none of its changes is
            // missed.
            let mut status = shared.status.subscribe();
            let worker = tokio::spawn(worker::run(shared.clone()));
            let outcome = {
                let changes = pod.forward_changes(&mut status);
                tokio::select! {
                    outcome = worker => outcome,
                    never = changes => match never {},
                }
            };
            // The worker's last status change may have come after the
            // forwarder's last look: it is sent now, not lost.
            if status.has_changed().unwrap_or(false) {
                pod.send_modified();
            }
            if let Err(e) = outcome
                && e.is_panic()
            {
                tracing::error!(pod = %shared.spec.name, "the pod's worker panicked");
                worker::abandon(
                    &shared,
                    EventReason::InternalError,
                    "the pod's worker failed",
                );
            }
            // A pod that was deleted leaves the runtime's registry.
            if shared.lifecycle.borrow().deleted() {
                pod.unregister();
            }
        });
    }

    /// Sends every status change `rx` sees to the runtime's watchers.
    /// Never returns.
    async fn forward_changes(
        &self,
        rx: &mut watch::Receiver<PodStatus>,
    ) -> std::convert::Infallible {
        while rx.changed().await.is_ok() {
            self.send_modified();
        }
        std::future::pending().await
    }

    /// Tells the runtime's watchers the pod changed, and saves its record.
    fn send_modified(&self) {
        self.save_record();
        if let Some(rt) = self.runtime.upgrade()
            && rt.changes.has_subscribers()
        {
            rt.changes
                .send(PodChange::Modified(Box::new(self.to_object())));
        }
    }

    /// Saves the pod's record ([`RuntimeConfig::keep_records`]), unless
    /// its runtime is stopping. A failure is logged: the pod runs on.
    fn save_record(&self) {
        let Some(rt) = self.runtime.upgrade() else {
            return;
        };
        if !rt.node.config().keep_records || rt.records_frozen.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = crate::store::save(self.dir(), &self.to_object()) {
            // A deleted pod's folder may be gone already.
            if self.dir().exists() {
                tracing::warn!(pod = %self.name(), error = %e, "could not save the pod's record");
            }
        }
    }

    /// Removes the pod from its runtime's registry (once), telling watchers.
    fn unregister(&self) {
        let Some(rt) = self.runtime.upgrade() else {
            return;
        };
        let key = (self.namespace().to_string(), self.name().to_string());
        let removed = {
            let mut pods = lock(&rt.pods);
            match pods.get(&key) {
                Some(p) if Arc::ptr_eq(&p.shared, &self.shared) => pods.remove(&key),
                _ => None,
            }
        };
        if removed.is_some() && rt.changes.has_subscribers() {
            rt.changes
                .send(PodChange::Deleted(Box::new(self.to_object())));
        }
    }

    /// The validated spec.
    pub fn spec(&self) -> &PodSpec {
        &self.shared.spec
    }

    /// The pod's sandbox (CRI level).
    pub fn sandbox(&self) -> &PodSandbox {
        &self.shared.sandbox
    }

    /// The pod's folder (volumes, logs).
    pub fn dir(&self) -> &Path {
        self.shared.sandbox.layout().dir()
    }

    /// A snapshot of the status.
    pub fn status(&self) -> PodStatus {
        self.shared.status.get()
    }

    /// Follows status changes (the latest value; intermediate ones may be
    /// skipped — [`Pod::events`] keeps every step).
    pub fn watch(&self) -> watch::Receiver<PodStatus> {
        self.shared.status.subscribe()
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.shared.status.events()
    }

    /// Events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.shared.status.subscribe_events()
    }

    /// Container output from now on, line by line.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.shared.sandbox.subscribe_logs()
    }

    /// A container's log, as `kubectl logs` shows it (see [`LogOptions`];
    /// `follow` aside): the current run's (an empty one if it has not
    /// written yet) or the previous one's.
    pub fn logs(&self, options: &LogOptions) -> Result<Vec<u8>, RuntimeError> {
        let (path, _) = self.log_path(options)?;
        crate::log::read(&path, options, !options.previous)
            .map_err(|e| RuntimeError::Io { path, source: e })
    }

    /// A container's log as chunks of output: what [`Pod::logs`] returns,
    /// then, with `options.follow`, new output as it is written until that
    /// run of the container ends (`kubectl logs -f`). The channel closes at
    /// the end; dropping the receiver stops the following.
    pub fn stream_logs(
        &self,
        options: &LogOptions,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>, RuntimeError> {
        let (path, run) = self.log_path(options)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let mut tail = crate::log::Tail::from_start(&path);
        // The rotated part, then the complete records of the file so far.
        let mut raw = std::fs::read(path.with_extension("log.1")).unwrap_or_default();
        raw.extend(tail.next());
        let mut first = Vec::new();
        let mut line_start = true;
        crate::log::decode(&raw, options, &mut first, &mut line_start);
        crate::log::trim(&mut first, options);
        let follow = options.follow;
        let options = options.clone();
        let pod = self.clone();
        tokio::spawn(async move {
            if !first.is_empty() && tx.send(first).await.is_err() || !follow {
                return;
            }
            let mut tick = tokio::time::interval(LOG_POLL);
            loop {
                tick.tick().await;
                // Whether the run is over, judged before reading, so that
                // its last output is read once it is.
                let over = pod
                    .status()
                    .container(&options.container)
                    .is_none_or(|cs| cs.restart_count != run || !cs.state.is_running());
                let mut chunk = Vec::new();
                crate::log::decode(&tail.next(), &options, &mut chunk, &mut line_start);
                if !chunk.is_empty() && tx.send(chunk).await.is_err() {
                    return;
                }
                if over || tx.is_closed() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// The log file `options` names, and its run.
    fn log_path(&self, options: &LogOptions) -> Result<(PathBuf, u32), RuntimeError> {
        let status = self.status();
        let container = &options.container;
        let cs = status
            .container(container)
            .ok_or_else(|| RuntimeError::NoSuchContainer {
                pod: self.name().to_string(),
                container: container.to_string(),
            })?;
        // Runs are numbered 0, 1, …: the latest is `restartCount`.
        let current = cs.restart_count;
        let run = if options.previous {
            current
                .checked_sub(1)
                .ok_or_else(|| RuntimeError::FailedPrecondition {
                    object: format!("pod {}", self.name()),
                    message: format!("previous terminated container \"{container}\" not found"),
                })?
        } else {
            current
        };
        Ok((self.shared.sandbox.layout().log(container, run), run))
    }

    /// Runs `argv` in container `container` as `kubectl exec` does: the
    /// container's program once more, with `argv` as its arguments
    /// (`argv[0]` its name), in its sandbox (its mounts, environment, pod
    /// network and memory limit), the caller's streams as its standard
    /// streams (see [`crate::Container::exec_streams`]). The container must be
    /// running. Dropping the future ends the guest.
    pub async fn exec(
        &self,
        container: &str,
        argv: Vec<String>,
        streams: crate::sandbox::ExecStreams,
    ) -> Result<status::Exit, RuntimeError> {
        let running = self
            .shared
            .running_containers()
            .into_iter()
            .find(|(name, _)| name == container)
            .map(|(_, c)| c);
        match running {
            Some(c) => c.exec_streams(argv, streams).await,
            None if self.shared.spec.container(container).is_none() => {
                Err(RuntimeError::NoSuchContainer {
                    pod: self.name().to_string(),
                    container: container.to_string(),
                })
            }
            None => Err(RuntimeError::FailedPrecondition {
                object: format!("container {container:?} of pod {}", self.name()),
                message: "the container is not running".into(),
            }),
        }
    }

    /// Waits until the pod has finished (Succeeded or Failed) and nothing of
    /// it runs any more; returns the final status.
    pub async fn wait(&self) -> PodStatus {
        self.shared.terminated().await;
        self.status()
    }

    /// Deletes the pod: stops its containers (grace `None` = the pod's
    /// `terminationGracePeriodSeconds`; `Some(0)` kills at once; deleting
    /// again with `Some(0)` cuts a termination short), removes its
    /// emptyDir/configMap/secret folders and, unless
    /// [`RuntimeConfig::retain_deleted_pods`], its whole folder with the
    /// logs (moved aside at once, removed in the background), and returns
    /// the final status.
    pub async fn delete(&self, grace: Option<Duration>) -> PodStatus {
        let grace = grace.unwrap_or(self.shared.spec.termination_grace_period);
        self.shared.deleted_at.get_or_init(status::now);
        self.shared.transition(|l| l.delete(grace));
        self.shared.terminated().await;
        self.shared.sandbox.remove();
        self.unregister();
        self.status()
    }

    /// Replaces the pod's labels and annotations (what a Kubernetes pod
    /// update may change of its metadata) and tells watchers. The pod's
    /// own files (downward API volumes) keep the values it started with.
    pub fn set_labels_and_annotations(
        &self,
        labels: std::collections::BTreeMap<String, String>,
        annotations: std::collections::BTreeMap<String, String>,
    ) {
        *lock(&self.shared.labels_annotations) = Some((labels, annotations));
        self.send_modified();
    }

    /// `metadata.annotations` as they are now.
    pub fn annotations(&self) -> std::collections::BTreeMap<String, String> {
        match &*lock(&self.shared.labels_annotations) {
            Some((_, annotations)) => annotations.clone(),
            None => self.wire.metadata.annotations.clone(),
        }
    }

    /// The whole `v1 Pod` document (metadata, spec with defaults, status).
    pub fn to_object(&self) -> PodObject {
        PodObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: {
                let mut meta = manifest::ObjectMeta {
                    deletion_timestamp: self
                        .shared
                        .deleted_at
                        .get()
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    ..self.wire.metadata.clone()
                };
                if let Some((labels, annotations)) = &*lock(&self.shared.labels_annotations) {
                    meta.labels = labels.clone();
                    meta.annotations = annotations.clone();
                }
                meta
            },
            spec: self.wire.spec.clone(),
            status: self.status(),
        }
    }
}

/// Where the log of run `run` of a container is kept under its pod's
/// folder ([`Pod::dir`]); see [`crate::sandbox::layout`].
pub fn log_file(pod_dir: &Path, container: &str, run: u32) -> PathBuf {
    crate::sandbox::PodLayout::at(pod_dir.to_path_buf()).log(container, run)
}
