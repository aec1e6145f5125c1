//! The kubelet level: pod policy over the [`sandbox`](crate::sandbox)
//! layer. One pod worker per pod runs init containers in order, native
//! sidecars, the app containers together, restarts with back-off, probes,
//! hooks, `activeDeadlineSeconds`, and the termination sequence; one status
//! writer records every step in the pod's status and events.
//!
//! | file | concern |
//! |---|---|
//! | `worker.rs` | the pod worker: sync → terminating → terminated |
//! | `lifecycle.rs` | where a pod is in its life (one value, one watch channel) |
//! | `restart.rs` | restart decisions and back-off |
//! | `terminate.rs` | preStop → SIGTERM → grace → SIGKILL; sidecars last, in reverse order |
//! | `probe.rs` | probe workers (they report; the pod worker acts) and hook actions |
//! | `eviction.rs` | ephemeral storage measured; a pod past a limit evicted |
//! | `restore.rs` | a recorded pod after a restart: run again, finished, or removed |
//! | `status.rs` | the only writer of status and events |
//! | `clock.rs` | Kubernetes durations in the runtime's time |

pub(crate) mod clock;
pub(crate) mod eviction;
pub(crate) mod lifecycle;
pub(crate) mod probe;
pub(crate) mod restart;
pub(crate) mod restore;
pub(crate) mod status;
pub(crate) mod terminate;
pub(crate) mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::RuntimeConfig;
use crate::sandbox::{Container, Image, PodSandbox};
use crate::spec::{ContainerKind, ContainerSpec, PodSpec};
use crate::sync::lock;
use lifecycle::Lifecycle;
use status::StatusWriter;

/// One pod as its worker, its handles and its runtime share it.
pub(crate) struct PodShared {
    pub spec: PodSpec,
    /// Images of `spec.init_containers` then `spec.containers`.
    pub images: Vec<Arc<Image>>,
    pub config: RuntimeConfig,
    /// Its sandbox (folder, volumes, network).
    pub sandbox: PodSandbox,
    /// Its status and events.
    pub status: StatusWriter,
    /// Moved by the worker (start, stop, finish) and by deletions; read by
    /// everyone (`Pod::wait` waits for `Terminated`).
    pub lifecycle: watch::Sender<Lifecycle>,
    /// The containers running now, by name: the worker inserts each run and
    /// removes it when it ends; termination stops those it finds here.
    running: Mutex<HashMap<String, Container>>,
    /// When the first deletion was asked (`metadata.deletionTimestamp`).
    pub deleted_at: std::sync::OnceLock<crate::api::status::Time>,
    /// Labels and annotations as changed since the pod was created (`None`:
    /// the manifest's), the only metadata a pod's update may change.
    pub labels_annotations: Mutex<Option<LabelsAndAnnotations>>,
}

/// A pod's `metadata.labels` and `metadata.annotations`.
pub(crate) type LabelsAndAnnotations = (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
);

impl PodShared {
    pub(crate) fn new(
        spec: PodSpec,
        images: Vec<Arc<Image>>,
        config: RuntimeConfig,
        sandbox: PodSandbox,
        status: StatusWriter,
    ) -> Self {
        Self {
            spec,
            images,
            config,
            sandbox,
            status,
            lifecycle: watch::channel(Lifecycle::Created).0,
            running: Mutex::new(HashMap::new()),
            labels_annotations: Mutex::new(None),
            deleted_at: std::sync::OnceLock::new(),
        }
    }

    /// A Kubernetes duration in this runtime's time (`time_scale`),
    /// saturating: any duration from a manifest or a caller is safe.
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        clock::scale(d, self.config.time_scale)
    }

    /// What termination needs of the pod.
    pub(crate) fn stop_context(&self) -> terminate::StopContext<'_> {
        terminate::StopContext {
            time_scale: self.config.time_scale,
            lifecycle: &self.lifecycle,
            status: &self.status,
        }
    }

    /// Whether nothing may start or restart any more.
    pub(crate) fn is_stopping(&self) -> bool {
        self.lifecycle.borrow().is_stopping()
    }

    /// Resolves once the pod is stopping.
    pub(crate) async fn stopping(&self) {
        let mut rx = self.lifecycle.subscribe();
        let _ = rx.wait_for(|l| l.is_stopping()).await;
    }

    /// Resolves once nothing of the pod runs any more.
    pub(crate) async fn terminated(&self) {
        let mut rx = self.lifecycle.subscribe();
        let _ = rx.wait_for(|l| l.is_terminated()).await;
    }

    /// Moves the lifecycle.
    pub(crate) fn transition(&self, f: impl FnOnce(Lifecycle) -> Lifecycle) {
        self.lifecycle.send_modify(|l| *l = f(*l));
    }

    /// A snapshot of the running containers.
    pub(crate) fn running_containers(&self) -> Vec<(String, Container)> {
        lock(&self.running)
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect()
    }

    fn set_running(&self, name: &str, container: Option<Container>) {
        let mut running = lock(&self.running);
        match container {
            Some(c) => running.insert(name.to_string(), c),
            None => running.remove(name),
        };
    }

    pub(crate) fn image_of(&self, c: &ContainerSpec) -> Arc<Image> {
        let index = match c.kind {
            ContainerKind::Init => self
                .spec
                .init_containers
                .iter()
                .position(|x| x.name == c.name),
            ContainerKind::App => self
                .spec
                .containers
                .iter()
                .position(|x| x.name == c.name)
                .map(|i| i + self.spec.init_containers.len()),
        };
        self.images[index.unwrap_or(0)].clone()
    }
}
