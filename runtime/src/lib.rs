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
//! use wasipod::{LogOptions, PodSpec, Runtime, RuntimeConfig};
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
//! println!("{}", String::from_utf8_lossy(&pod.logs(&LogOptions::container("app"))?));
//! pod.delete(Some(Duration::ZERO)).await;             // removes its folder
//! # Ok(()) }
//! ```
//!
//! `runtime/examples/embed.rs` is a complete program (`cargo run -p wasipod
//! --example embed`).
//!
//! ## Two layers
//!
//! wasipod holds both halves of the Kubernetes split:
//!
//! - [`sandbox`] — the container-runtime level (CRI): a [`PodSandbox`]
//!   (the pod's folder, volumes, pod IP, `localhost`, published ports) and
//!   [`Container`]s in it that are created, started, signalled (SIGTERM
//!   through a file contract, SIGKILL), waited on and exec'd into. No pod
//!   policy: this is what the containerd shim drives.
//! - [`kubelet`] — pod policy over it: init containers in order, native
//!   sidecars, restarts with back-off, probes and hooks, deadlines, the
//!   termination sequence, and the pod's status and events.
//!
//! [`Runtime`] is the registry of pods (create, get, list, watch, delete)
//! that the CLI, the daemon and embedders use; [`store`] keeps the records a
//! front end reads after the process that ran a pod has gone.
//!
//! ## Layout
//!
//! Dependencies point one way, top to bottom:
//!
//! | module | concept |
//! |---|---|
//! | [`runtime`](Runtime), [`config`], [`store`] | the registry of pods, its settings, pod records on disk |
//! | [`kubelet`] | the pod worker, lifecycle, restarts, termination order, probes, the status writer |
//! | [`sandbox`] | pod sandboxes and containers (CRI level); [`sandbox::layout`]: every path under a pod's folder; [`sandbox::state`]: which process owns which pod folders, reclaiming what dead ones left |
//! | `engine` | the wasmtime engine, epoch preemption, compile cache, one guest's store, open-file caps |
//! | [`net`] | the pod network: `wasi:sockets` over in-memory streams, pod IPs, publishing, outbound |
//! | [`log`] | bounded per-container log files, the live line stream, the only log reader |
//! | [`spec`] | validated domain types ([`PodSpec`]) |
//! | [`api`] ([`manifest`], [`status`], [`quantity`]), [`error`] | Kubernetes shapes, no I/O: wire types, status and events, quantities; errors and their kinds |
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

pub mod api;
pub mod config;
pub mod error;
pub mod kubelet;
pub mod log;
pub mod net;
mod runtime;
pub mod sandbox;
pub mod spec;
pub mod store;

mod engine;
mod fanout;
mod sync;

pub use api::{manifest, quantity, status, table};

pub use config::{PoolConfig, RuntimeConfig};
pub use engine::{CacheOrigin, CacheStats};
pub use error::{ErrorKind, FieldError, ManifestError, RuntimeError};
pub use log::{LogLine, LogOptions, Stream};
pub use runtime::{Pod, PodChange, PodObject, Runtime, log_file};
pub use sandbox::{Container, PodSandbox};
pub use spec::{PodSpec, RestartPolicy};
pub use status::{
    ContainerState, ContainerStatus, Event, EventType, PodEvent, PodPhase, PodStatus,
};
