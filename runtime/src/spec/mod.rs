//! Validated pod: what the pod worker runs. Built from the wire types by
//! [`PodSpec::try_from`], which applies Kubernetes' defaults and rules and
//! reports every problem with its field path.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the validated types |
//! | `field.rs` | field paths and field errors, in Kubernetes' wording |
//! | `env.rs` | environment values and `$(VAR)` expansion |
//! | `names.rs` | DNS labels and subdomains, UUIDs |
//! | `wasm.rs` | what an image is, read from its bytes without compiling it |
//! | `validate/` | the validator, one file per concept (pod, host namespaces, volumes, containers, probes and hooks, ports, security context, images, env sources) |

mod env;
pub mod field;
pub mod image;
mod names;
pub mod network;
pub mod resources;
mod validate;
pub mod wasm;

pub use crate::api::RestartPolicy;
pub use env::{EnvValue, Environment, ExpansionTooLarge, MAX_EXPANDED_BYTES};
pub use field::FieldPath;
pub use image::{ImageRef, ImageResolver, LocalFiles};
pub(crate) use names::truncate_hostname;
pub use names::{is_dns_label, is_dns_subdomain, is_uuid};
pub use resources::{ResourceList, Resources, qos_class};
use validate::Validator;
pub use wasm::{ImageInfo, WasiVersion};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::manifest::{self, ManifestFile};
use crate::error::ManifestError;
use network::{OutboundRule, PortMapping};

/// Where a guest writes its termination message unless told otherwise
/// (Kubernetes' default `terminationMessagePath`).
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Kubernetes' default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// A validated pod.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (default `default`).
    pub namespace: String,
    /// `metadata.uid` (generated when absent).
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `spec.hostname`, or the pod name.
    pub hostname: String,
    /// `spec.initContainers`, in order.
    pub init_containers: Vec<ContainerSpec>,
    /// `spec.containers`.
    pub containers: Vec<ContainerSpec>,
    /// `spec.volumes`.
    pub volumes: Vec<VolumeSpec>,
    /// `spec.restartPolicy`.
    pub restart_policy: RestartPolicy,
    /// `spec.terminationGracePeriodSeconds` (default 30 s).
    pub termination_grace_period: Duration,
    /// `spec.activeDeadlineSeconds`.
    pub active_deadline: Option<Duration>,
    /// `status.qosClass`, from the containers' requests and limits.
    pub qos_class: crate::api::QosClass,
    /// Fields that were accepted but have no effect here, with the reason.
    pub warnings: Vec<String>,
    /// Pod ports published on the host (`hostPort`; the CLI's `--publish`
    /// adds more).
    pub publish: Vec<PortMapping>,
    /// Where the pod may connect outside the pod network (annotation
    /// `wasipod.io/outbound`); empty: nowhere.
    pub outbound: Vec<OutboundRule>,
    /// The manifest file this came from (for messages).
    pub source: String,
    /// The wire object with defaults filled in, echoed in the Pod document.
    pub(crate) wire: manifest::Pod,
}

/// Which list a container belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// `spec.initContainers[]`.
    Init,
    /// `spec.containers[]`.
    App,
}

/// A validated container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// Init or app.
    pub kind: ContainerKind,
    /// Its field path, e.g. `spec.containers[1]`, for messages.
    pub field: String,
    /// What `image` names.
    pub image_ref: ImageRef,
    /// The `.wasm` file to load, once resolved ([`PodSpec::resolve_images`];
    /// until then, the path the reference names).
    pub image_path: PathBuf,
    /// `image` as written in the manifest.
    pub image: String,
    /// argv as written: `command` + `args` (the program's name when
    /// `command` is empty); `$(VAR)` is expanded by [`ContainerSpec::resolve`].
    pub args: Vec<String>,
    /// The environment, in order.
    pub env: Vec<(String, EnvValue)>,
    /// `workingDir`.
    pub working_dir: Option<String>,
    /// `volumeMounts`.
    pub mounts: Vec<MountSpec>,
    /// `resources.limits.memory` in bytes.
    pub memory_limit: Option<u64>,
    /// `resources`, requests defaulted from limits.
    pub resources: Resources,
    /// The mount holding `workingDir` (index into `mounts`) and the path
    /// inside it: relative paths resolve there. `None` with a `workingDir`:
    /// it is in the container's root.
    pub working_dir_mount: Option<(usize, String)>,
    /// `securityContext.readOnlyRootFilesystem`.
    pub read_only_root: bool,
    /// `terminationMessagePath` (default `/dev/termination-log`).
    pub termination_message_path: String,
    /// `terminationMessagePolicy` (default `File`).
    pub termination_message_policy: TerminationMessagePolicy,
    /// `startupProbe`.
    pub startup_probe: Option<ProbeSpec>,
    /// `livenessProbe`.
    pub liveness_probe: Option<ProbeSpec>,
    /// `readinessProbe`.
    pub readiness_probe: Option<ProbeSpec>,
    /// `lifecycle.postStart`.
    pub post_start: Option<Action>,
    /// `lifecycle.preStop`.
    pub pre_stop: Option<Action>,
    /// An init container with `restartPolicy: Always`: a native sidecar.
    pub sidecar: bool,
}

/// `terminationMessagePolicy`: where `state.terminated.message` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminationMessagePolicy {
    /// The termination message file only.
    #[default]
    File,
    /// The file; when it is empty and the container failed, the end of its
    /// log (the last 80 lines, at most 2 KiB).
    FallbackToLogsOnError,
}

impl TerminationMessagePolicy {
    /// Kubernetes' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationMessagePolicy::File => "File",
            TerminationMessagePolicy::FallbackToLogsOnError => "FallbackToLogsOnError",
        }
    }
}

/// What a probe or hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the container's program once more with this argv, in the same
    /// sandbox; exit code 0 is success.
    Exec(Vec<String>),
    /// HTTP GET to the pod's own IP; 200–399 is success.
    HttpGet {
        /// Port.
        port: u16,
        /// Path (with query).
        path: String,
        /// Host header.
        host: Option<String>,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// A TCP connect to the pod's own IP.
    TcpSocket {
        /// Port.
        port: u16,
    },
    /// `grpc.health.v1.Health/Check` to the pod's own IP (probes only);
    /// `SERVING` is success.
    Grpc {
        /// Port.
        port: u16,
        /// The service asked about (empty: the server as a whole).
        service: String,
    },
    /// Wait (hooks only).
    Sleep(Duration),
}

/// A validated probe, with Kubernetes' defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What it does.
    pub action: Action,
    /// `initialDelaySeconds` (0).
    pub initial_delay: Duration,
    /// `periodSeconds` (10).
    pub period: Duration,
    /// `timeoutSeconds` (1).
    pub timeout: Duration,
    /// `successThreshold` (1).
    pub success_threshold: u32,
    /// `failureThreshold` (3).
    pub failure_threshold: u32,
    /// Probe-level `terminationGracePeriodSeconds`.
    pub grace: Option<Duration>,
}

/// A validated volume mount.
#[derive(Debug, Clone)]
pub struct MountSpec {
    /// Index into [`PodSpec::volumes`].
    pub volume: usize,
    /// The absolute guest path.
    pub mount_path: String,
    /// Writes fail inside the guest.
    pub read_only: bool,
    /// A directory inside the volume.
    pub sub_path: Option<String>,
    /// Field path, e.g. `spec.containers[0].volumeMounts[1]`.
    pub field: String,
}

/// A validated volume.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    /// Its name.
    pub name: String,
    /// Where its files come from.
    pub source: VolumeSource,
    /// Field path, e.g. `spec.volumes[0]`.
    pub field: String,
}

/// The kinds of volume wasipod provides.
#[derive(Debug, Clone)]
pub enum VolumeSource {
    /// A fresh directory per pod, removed with the pod: on disk (the
    /// runtime's data folder), or in memory with `medium: Memory`.
    EmptyDir {
        /// `medium: Memory`: kept on tmpfs, charged to the pod's memory.
        memory: bool,
        /// `sizeLimit` in bytes, and as written (for messages).
        size_limit: Option<(u64, String)>,
    },
    /// A host directory.
    HostPath {
        /// Absolute host path.
        path: PathBuf,
        /// `DirectoryOrCreate`: create it when missing.
        create: bool,
    },
    /// Files from a ConfigMap or Secret, always mounted read-only.
    Files {
        /// Relative path → contents.
        files: Vec<(String, Vec<u8>)>,
    },
}

impl PodSpec {
    /// Reads and validates a manifest file.
    ///
    /// Steps: parse ([`ManifestFile`]), validate ([`PodSpec::try_from`]:
    /// no disk access), resolve the images as local files
    /// ([`PodSpec::resolve_images`] with [`LocalFiles`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        Self::try_from(ManifestFile::from_file(path)?)?.with_local_images()
    }

    /// Parses and validates manifest text; relative paths resolve against
    /// `base_dir`; images are local files (as [`PodSpec::from_file`]).
    pub fn from_yaml(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        Self::try_from(ManifestFile::from_yaml(text, base_dir, "<inline>")?)?.with_local_images()
    }

    fn with_local_images(mut self) -> Result<Self, ManifestError> {
        match self.resolve_images(&LocalFiles) {
            Ok(()) => Ok(self),
            Err(errors) => Err(ManifestError::Invalid {
                source_name: self.source.clone(),
                pod: self.name.clone(),
                errors,
            }),
        }
    }

    /// The manifest as validated, with Kubernetes' defaults filled in
    /// (the `spec` a Pod object shows).
    pub fn wire(&self) -> &manifest::Pod {
        &self.wire
    }

    /// The container with this name, init or app.
    pub fn container(&self, name: &str) -> Option<&ContainerSpec> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .find(|c| c.name == name)
    }

    /// How many guests of this pod can run at once: each container, plus
    /// each exec probe or hook (they run the container's image once more).
    /// Sizes an instance pool (`RuntimeConfig::pool`) for a number of pods.
    pub fn guest_slots(&self) -> u32 {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .map(|c| {
                let probes = [&c.startup_probe, &c.liveness_probe, &c.readiness_probe];
                let execs = probes
                    .into_iter()
                    .flatten()
                    .map(|p| &p.action)
                    .chain(c.post_start.iter())
                    .chain(c.pre_stop.iter())
                    .filter(|a| matches!(a, Action::Exec(_)))
                    .count();
                1 + execs as u32
            })
            .sum()
    }

    /// The largest `limits.memory` of its containers.
    pub fn largest_memory_limit(&self) -> Option<u64> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .filter_map(|c| c.memory_limit)
            .max()
    }

    /// Every container, init containers first.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(&self.containers)
    }

    /// A copy with another name (and a fresh uid), for running many pods
    /// from one manifest.
    pub fn renamed(&self, name: &str) -> PodSpec {
        let mut spec = self.clone();
        spec.name = name.to_string();
        spec.uid = uuid::Uuid::new_v4().to_string();
        spec.wire.metadata.name = Some(spec.name.clone());
        spec.wire.metadata.uid = Some(spec.uid.clone());
        if self.hostname == self.name {
            spec.hostname = truncate_hostname(name);
        }
        spec
    }
}

impl TryFrom<ManifestFile> for PodSpec {
    type Error = ManifestError;

    fn try_from(file: ManifestFile) -> Result<Self, ManifestError> {
        let mut v = Validator {
            errors: Vec::new(),
            warnings: Vec::new(),
            publish: Vec::new(),
            file: &file,
        };
        let spec = v.pod();
        let pod = file.pod.metadata.name.clone().unwrap_or_default();
        match spec {
            Some(spec) if v.errors.is_empty() => Ok(spec),
            _ => Err(ManifestError::Invalid {
                source_name: file.source.clone(),
                pod,
                errors: v.errors,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::env::expand;
    use super::validate::decode_base64;
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let lookup = |n: &str| (n == "A").then_some("x");
        let e = |t: &str| expand(t, lookup, 1000).unwrap();
        assert_eq!(e("$(A)-$(B)-$$(A)-$"), "x-$(B)-$(A)-$");
        assert_eq!(e("no vars"), "no vars");
        assert_eq!(e("$(unterminated"), "$(unterminated");
        assert_eq!(expand("$(A)$(A)$(A)", lookup, 3).as_deref(), Some("xxx"));
        assert_eq!(expand("$(A)$(A)$(A)$(A)", lookup, 3), None);
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("a$==").is_none());
    }

    #[test]
    fn names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("-a"));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("a..b"));
    }
}
