//! # containerd-shim-wasipod-v1
//!
//! containerd's runtime v2 shim for wasipod (runtime type
//! `io.containerd.wasipod.v1`): Kubernetes nodes run wasipod pods through a
//! RuntimeClass whose handler is `wasipod`.
//!
//! One shim process serves one pod. containerd starts the shim for each
//! task; the `start` action groups the containers of a CRI pod sandbox (by
//! the `io.kubernetes.cri.sandbox-id` annotation) onto the sandbox's
//! running shim, so they share one [`wasipod::PodSandbox`]: its volumes,
//! its in-memory loopback, its pod IP. Under Kubernetes the kubelet does
//! pod policy (init order, probes, restarts); this shim does what a
//! container runtime does, over wasipod's `sandbox` layer only.
//!
//! ## Layout
//!
//! | module | concept |
//! |---|---|
//! | `main.rs` | the shim's actions (`start`: group and spawn; `delete`: clean up after a dead shim) |
//! | `service` | the task API (create, start, state, wait, kill, exec, delete, pids, stats, shutdown) |
//! | `bundle` | the OCI bundle read into sandbox terms: role, argv, env, mounts, limits, namespaces |
//! | `rootfs` | mounting the container's root file system into the bundle |
//! | `error` | failures as ttrpc statuses, in one place |

mod bundle;
mod error;
mod rootfs;
mod service;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::asynchronous::{ExitSignal, Shim, run, spawn};
use containerd_shim::protos::shim_async::Client;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_str_to_file;
use containerd_shim::{Config, DeleteResponse, Error, Flags, StartOpts};

use bundle::{Bundle, Role};

/// containerd's name for this runtime.
const RUNTIME_ID: &str = "io.containerd.wasipod.v1";

struct WasipodShim {
    namespace: String,
    /// The id containerd started this shim for.
    id: String,
    exit: Arc<ExitSignal>,
}

/// The pod a task belongs to (the bundle is the current folder): the CRI
/// sandbox's id for its containers, the task's own id otherwise.
fn group_of(id: &str) -> String {
    match Bundle::load(Path::new(".")).map(|b| b.role()) {
        Ok(Role::InSandbox(sandbox)) => sandbox,
        _ => id.to_string(),
    }
}

#[async_trait]
impl Shim for WasipodShim {
    type T = service::Service;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Self {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    /// The `start` action (run in the bundle): the containers of a CRI pod
    /// sandbox go to the sandbox's shim, every other task gets its own;
    /// the address is also written to the bundle's `address` file, where
    /// containerd looks for a running shim when it restarts.
    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let grouping = group_of(&opts.id);
        // A container of a pod whose shim already serves: its address, with
        // no new process (spawning one only to find the socket taken costs
        // a process start per container).
        if grouping != opts.id {
            let address =
                containerd_shim::socket_address(&opts.address, &opts.namespace, &grouping);
            if Client::connect(&address).await.is_ok() {
                write_str_to_file("address", &address).await?;
                return Ok(address);
            }
        }
        let address = spawn(opts, &grouping, Vec::new()).await?;
        write_str_to_file("address", &address).await?;
        Ok(address)
    }

    /// The `delete` action, run by containerd in the bundle after a shim
    /// died: unmounts the root file system it left, removes the pod's
    /// shim folder if this was the pod's own task, and reports the task
    /// killed.
    async fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        rootfs::unmount(
            &Path::new(".")
                .join("rootfs")
                .canonicalize()
                .unwrap_or_default(),
        );
        if group_of(&self.id) == self.id {
            service::remove_state(&service::state_dir(&self.namespace, &self.id));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(DeleteResponse {
            exit_status: 128 + 9,
            exited_at: containerd_shim::protos::protobuf::MessageField::some(
                containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp {
                    seconds: now.as_secs() as i64,
                    nanos: now.subsec_nanos() as i32,
                    ..Default::default()
                },
            ),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        service::Service::new(&self.namespace, &self.id, publisher, self.exit.clone())
    }
}

#[tokio::main]
async fn main() {
    let config = Config {
        // The shim starts no child process (every guest runs in it), and
        // mounting forks a helper it waits for itself.
        no_reaper: true,
        no_sub_reaper: true,
        ..Default::default()
    };
    run::<WasipodShim>(RUNTIME_ID, Some(config)).await;
}
