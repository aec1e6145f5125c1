//! Wire types: the Kubernetes objects as they appear in YAML or JSON, with
//! Kubernetes' own field names, and the parser that reads them.
//!
//! Parsing is strict like `kubectl apply --validate=strict`: an unknown field
//! is an error naming its path. These types only describe the shape; the
//! rules (names, references, defaults) are checked when a [`ManifestFile`] is
//! turned into a validated [`crate::PodSpec`].
//!
//! A file holds one `v1 Pod` and, optionally, the `v1 ConfigMap` and
//! `v1 Secret` objects it refers to, as YAML documents separated by `---`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::error::ManifestError;

/// A `v1 Pod` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    /// Must be `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Must be `Pod`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired pod.
    #[serde(default)]
    pub spec: PodSpec,
    /// Status is output only; a status in the input is ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<Value>,
}

/// `metadata` of an object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Object name (a DNS-1123 subdomain for pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix for a generated name when `name` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace; `default` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Unique id; generated when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Set by wasipod when the pod is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Set by wasipod when the pod's deletion was asked (kubectl's
    /// `Terminating`); ignored in a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// Server-side bookkeeping copied from `kubectl get -o yaml`; ignored.
    #[serde(default, skip_serializing)]
    pub resource_version: Option<Value>,
    /// Ignored (server-side bookkeeping).
    #[serde(default, skip_serializing)]
    pub generation: Option<Value>,
    /// Ignored (server-side bookkeeping).
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<Value>,
    /// Ignored: there is no garbage collector outside a cluster.
    #[serde(default, skip_serializing)]
    pub owner_references: Option<Value>,
    /// Ignored: there is no API server holding the object.
    #[serde(default, skip_serializing)]
    pub finalizers: Option<Value>,
}

/// `spec` of a pod.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    /// Run one at a time, in order, each to success, before `containers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The app containers; at least one.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Volumes the containers may mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// `Always` (default), `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Grace period on deletion, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// The pod fails with `DeadlineExceeded` after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// The pod's hostname (default: the pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Refused: a wasm pod has no host network namespace to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Refused: a wasm pod has no host PID namespace to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// Refused: a wasm pod has no host IPC namespace to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// Refused: guests are not processes that could see each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// Pod-level security settings; see [`PodSecurityContext`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Value>,
    /// Ignored (cluster DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<Value>,
    /// Ignored (cluster DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<Value>,
    /// Ignored (no API server to authenticate to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<Value>,
    /// Ignored (deprecated alias of serviceAccountName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<Value>,
    /// Ignored (no API server to authenticate to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<Value>,
    /// Ignored (no cluster services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<Value>,
    /// Ignored (images are local files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Value>,
    /// Ignored (one runtime: wasipod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<Value>,
}

/// Pod-level `securityContext`. Settings a wasm sandbox already satisfies
/// (non-root users, seccomp profiles) are accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Ignored: volume files belong to the runtime's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_groups: Option<Vec<i64>>,
    /// Ignored: guests make no system calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Value>,
    /// Refused: there is no kernel to apply sysctls to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<Value>,
}

/// A container: one WASI program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// A DNS-1123 label, unique in the pod.
    #[serde(default)]
    pub name: String,
    /// Path of the `.wasm` file: relative to the manifest's folder, absolute,
    /// or a `file://` URL.
    #[serde(default)]
    pub image: String,
    /// argv\[0..\]; when empty, the program's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Appended to `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables from every key of a ConfigMap or Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// The guest's initial working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Volumes mounted into the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Ports the container listens on (informational until the pod network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// `limits.memory` caps the guest's linear memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// For init containers, `Always` makes a native sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Ignored: images are local files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Container-level security settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// postStart and preStop hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Restarts the container when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Decides whether the container is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Gates the other probes until the container has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// Where the guest writes its termination message (default
    /// `/dev/termination-log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_path: Option<String>,
    /// `File` (default) or `FallbackToLogsOnError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_policy: Option<String>,
    /// Accepted when false; guests' stdin is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
    /// Accepted when false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_once: Option<bool>,
    /// Accepted when false: guests have no terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}

/// `lifecycle`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    /// Runs right after the container starts; it is not Running until done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<Handler>,
    /// Runs before the container is sent SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Handler>,
    /// Refused: WASI has no signals to choose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<Value>,
}

/// A probe or hook action: exactly one of these.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Handler {
    /// Run the container's program again with this argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET over the pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// A TCP connect over the pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Wait (hooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<SleepAction>,
    /// Refused: lifecycle hooks have no gRPC action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Value>,
}

/// `grpc` of a probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcAction {
    /// The port (a number: Kubernetes takes no port name here).
    #[serde(default)]
    pub port: i64,
    /// The service name sent in the request (default: empty, the server as
    /// a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A probe: a handler and its timing. Flattened in Kubernetes' shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// Run the container's program again with this argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET over the pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// A TCP connect over the pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// `grpc.health.v1.Health/Check` over the pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
    /// Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i64>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i64>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Default 1 (must be 1 for liveness and startup probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    /// Grace period when this probe kills the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

/// `exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    /// argv; exit code 0 is success.
    #[serde(default)]
    pub command: Vec<String>,
}

/// A port given by number or by the name of a container port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    String(String),
}

/// `httpGet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    /// Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Number or container port name.
    pub port: IntOrString,
    /// Host header (the connection always goes to the pod's own IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` (HTTPS is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// A request header.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `tcpSocket`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    /// Number or container port name.
    pub port: IntOrString,
    /// Ignored beyond the pod's own IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `sleep`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SleepAction {
    /// Seconds.
    pub seconds: i64,
}

/// An environment variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    #[serde(default)]
    pub name: String,
    /// Literal value; `$(VAR)` refers to earlier variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A value taken from the pod or from a ConfigMap/Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// `env[].valueFrom`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVarSource {
    /// A field of the pod (`metadata.name`, `metadata.namespace`, `metadata.uid`,
    /// `metadata.labels['k']`, `metadata.annotations['k']`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// A key of a ConfigMap in the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    /// A key of a Secret in the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
    /// A request or limit of a container of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldRef>,
}

/// `resourceFieldRef`: `limits.cpu`, `requests.memory`, … of a container,
/// in units of `divisor`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFieldRef {
    /// The container (required in volumes; env: the container itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `limits.cpu`, `limits.memory`, `limits.ephemeral-storage`,
    /// `requests.cpu`, `requests.memory`, `requests.ephemeral-storage`.
    #[serde(default)]
    pub resource: String,
    /// The unit (default `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisor: Option<Value>,
}

/// `fieldRef`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    /// The field's path.
    #[serde(default)]
    pub field_path: String,
    /// `v1` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// `configMapKeyRef` / `secretKeyRef`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRef {
    /// The object's name.
    #[serde(default)]
    pub name: String,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// When true, a missing object or key leaves the variable unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `envFrom[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    /// Prepended to every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Every key of this ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ObjectRef>,
    /// Every key of this Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectRef>,
}

/// A reference to a ConfigMap or Secret by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    /// The object's name.
    #[serde(default)]
    pub name: String,
    /// When true, a missing object is not an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `volumeMounts[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    /// The volume's name.
    #[serde(default)]
    pub name: String,
    /// An absolute path in the guest.
    #[serde(default)]
    pub mount_path: String,
    /// Writes fail inside the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// A directory inside the volume to mount instead of its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Ignored: there is no mount propagation between guests and host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<Value>,
}

/// `ports[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    /// An IANA service name (≤ 15 characters), unique in the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// 1..=65535.
    #[serde(default)]
    pub container_port: i64,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Publishing on the host: not supported yet (pod network issue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// Publishing on the host: not supported yet (pod network issue).
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// `resources`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// `memory` caps linear memory; `cpu` is accepted (fair share by epochs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Value>,
    /// Ignored (cluster scheduling).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Value>,
}

/// Container-level `securityContext`. What a wasm sandbox already guarantees
/// is accepted; what would widen a Linux process's power is refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    /// Refused when true: a guest cannot be given host privileges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// `drop` is accepted (guests hold no capabilities); `add` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Accepted when false (always true of a guest); refused when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Ignored: guests have no user identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Makes the container's root (`/`, with its `/tmp`) read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Ignored: guests make no system calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<Value>,
    /// Refused: there is no /proc to unmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_mount: Option<String>,
}

/// `securityContext.capabilities`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Refused when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// `volumes[]`: exactly one source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// A DNS-1123 label, unique in the pod.
    #[serde(default)]
    pub name: String,
    /// A fresh directory per pod, removed with the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
    /// A directory of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPath>,
    /// The keys of a ConfigMap in the same file, as read-only files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolume>,
    /// The keys of a Secret in the same file, as read-only files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolume>,
    /// Refused: volumes that need a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<Value>,
    /// ConfigMap, Secret and downward API files in one folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolume>,
    /// Pod fields and container resources as read-only files.
    #[serde(
        rename = "downwardAPI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub downward_api: Option<DownwardApiVolume>,
    /// Refused: volumes that need a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs: Option<Value>,
    /// Refused: volumes that need a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<Value>,
    /// Refused: volumes that need a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<Value>,
    /// Refused: OCI images are a later feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Value>,
}

/// `downwardAPI` volume source (and projection).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownwardApiVolume {
    /// One file each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<DownwardApiFile>,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i64>,
}

/// `downwardAPI.items[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownwardApiFile {
    /// A relative path without `..`.
    #[serde(default)]
    pub path: String,
    /// A pod field (`metadata.name`, `metadata.labels`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// A container's request or limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldRef>,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i64>,
}

/// `projected` volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectedVolume {
    /// The sources, merged into one folder.
    #[serde(default)]
    pub sources: Vec<VolumeProjection>,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i64>,
}

/// `projected.sources[]`: exactly one source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeProjection {
    /// Keys of a ConfigMap in the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ProjectedKeys>,
    /// Keys of a Secret in the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ProjectedKeys>,
    /// Downward API files.
    #[serde(
        rename = "downwardAPI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub downward_api: Option<DownwardApiVolume>,
    /// Refused: a token needs an API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<Value>,
    /// Refused: trust bundles live in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_trust_bundle: Option<Value>,
    /// Refused: pod certificates are issued by a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_certificate: Option<Value>,
}

/// `projected.sources[].configMap` / `.secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectedKeys {
    /// The ConfigMap's or Secret's name.
    #[serde(default)]
    pub name: String,
    /// Which keys, at which relative paths (default: every key at its name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// A missing object gives no files instead of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `emptyDir`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDir {
    /// `""` (disk) or `Memory` (also disk here; the pod's files are temporary either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// Accepted (a quantity); not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Value>,
}

/// `hostPath`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPath {
    /// An absolute directory of the host.
    #[serde(default)]
    pub path: String,
    /// `""`, `Directory` or `DirectoryOrCreate`: a WASI mount is a directory.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// `configMap` volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolume {
    /// The ConfigMap's name.
    #[serde(default)]
    pub name: String,
    /// Which keys, at which relative paths (default: every key at its name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// A missing ConfigMap gives an empty volume instead of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i64>,
}

/// `secret` volume source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolume {
    /// The Secret's name.
    #[serde(default)]
    pub secret_name: String,
    /// Which keys, at which relative paths (default: every key at its name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// A missing Secret gives an empty volume instead of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i64>,
}

/// `items[]` of a configMap/secret volume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// A relative path without `..`.
    #[serde(default)]
    pub path: String,
    /// File mode bits (accepted; guests cannot see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i64>,
}

/// A `v1 ConfigMap` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    /// `v1`.
    #[serde(default)]
    pub api_version: String,
    /// `ConfigMap`.
    #[serde(default)]
    pub kind: String,
    /// Its name.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Text values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Base64-encoded values.
    #[serde(default)]
    pub binary_data: BTreeMap<String, String>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// A `v1 Secret` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    /// `v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Secret`.
    #[serde(default)]
    pub kind: String,
    /// Its name.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Base64-encoded values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Plain values (take precedence over `data`).
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    /// Accepted (`Opaque` and friends).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// The objects read from one manifest file.
#[derive(Debug, Clone, Default)]
pub struct ManifestFile {
    /// The pod.
    pub pod: Pod,
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Folder that relative image paths and hostPaths are resolved against.
    pub base_dir: PathBuf,
    /// Name of the file, for messages (`<inline>` for strings).
    pub source: String,
}

impl ManifestFile {
    /// Reads a manifest file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        Self::from_yaml(&text, base, path.display().to_string())
    }

    /// Parses manifest text; relative paths resolve against `base_dir`.
    pub fn from_yaml(
        text: &str,
        base_dir: impl Into<PathBuf>,
        source: impl Into<String>,
    ) -> Result<Self, ManifestError> {
        let source = source.into();
        check_shape(text).map_err(|message| ManifestError::TooComplex {
            source_name: source.clone(),
            message,
        })?;
        let mut out = ManifestFile {
            base_dir: base_dir.into(),
            source: source.clone(),
            ..Default::default()
        };
        // First pass: syntax (with line and column) and each document's kind.
        let mut kinds = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let value = Value::deserialize(doc).map_err(|e| syntax_error(&source, &e))?;
            if value.is_null() {
                kinds.push(None);
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_string);
            let api = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let index = kinds.len();
            match (api.as_deref(), kind.as_deref()) {
                (Some("v1"), Some("Pod" | "ConfigMap" | "Secret")) => {}
                (_, None) => {
                    return Err(ManifestError::Field {
                        source_name: source,
                        path: doc_path(index, "kind"),
                        message: "Required value: must be Pod, ConfigMap or Secret".into(),
                    });
                }
                (Some("v1"), Some(other)) => {
                    return Err(ManifestError::Field {
                        source_name: source,
                        path: doc_path(index, "kind"),
                        message: format!(
                            "Unsupported value: {other:?}: supported values: \"Pod\", \"ConfigMap\", \"Secret\""
                        ),
                    });
                }
                (other, _) => {
                    return Err(ManifestError::Field {
                        source_name: source,
                        path: doc_path(index, "apiVersion"),
                        message: format!(
                            "Unsupported value: {:?}: supported values: \"v1\"",
                            other.unwrap_or("")
                        ),
                    });
                }
            }
            kinds.push(kind);
        }
        // Second pass: each document into its wire type, with the field path.
        let mut pods = 0;
        for (doc, kind) in serde_yaml_ng::Deserializer::from_str(text).zip(kinds) {
            match kind.as_deref() {
                Some("Pod") => {
                    out.pod = typed(doc, &source)?;
                    pods += 1;
                }
                Some("ConfigMap") => {
                    let cm: ConfigMap = typed(doc, &source)?;
                    let name = cm.metadata.name.clone().unwrap_or_default();
                    out.config_maps.insert(name, cm);
                }
                Some("Secret") => {
                    let s: Secret = typed(doc, &source)?;
                    let name = s.metadata.name.clone().unwrap_or_default();
                    out.secrets.insert(name, s);
                }
                _ => {}
            }
        }
        match pods {
            1 => Ok(out),
            0 => Err(ManifestError::NoPod {
                source_name: source,
            }),
            n => Err(ManifestError::ManyPods {
                source_name: source,
                count: n,
            }),
        }
    }
}

/// The largest manifest accepted: the Kubernetes API server's limit on a
/// request body.
pub const MAX_MANIFEST_BYTES: usize = 3 << 20;

/// The deepest nesting of flow collections (`[`, `{`) accepted. The YAML
/// parser takes time quadratic in this depth (40,000 levels in 80 KB: over
/// 4 s), and no Kubernetes object nests deeper than a few dozen levels.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Refuses, before parsing, text larger than [`MAX_MANIFEST_BYTES`] or
/// nested deeper than [`MAX_FLOW_DEPTH`]. Brackets inside quoted scalars
/// do not count (a quote ends at its line's end here, which can only
/// count more, never less).
fn check_shape(text: &str) -> Result<(), String> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{} bytes: larger than the {MAX_MANIFEST_BYTES} bytes a manifest may have",
            text.len()
        ));
    }
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    for &b in text.as_bytes() {
        match (quote, b) {
            (_, b'\n') => {
                line += 1;
                quote = None;
                comment = false;
            }
            _ if comment => {}
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"')
                if matches!(prev, b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b':') =>
            {
                quote = Some(b)
            }
            (None, b'#') if matches!(prev, b' ' | b'\t' | b'\n') => comment = true,
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(format!(
                        "line {line}: flow collections ([...], {{...}}) nested more than {MAX_FLOW_DEPTH} deep"
                    ));
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

fn doc_path(index: usize, field: &str) -> String {
    if index == 0 {
        field.to_string()
    } else {
        format!("document[{index}].{field}")
    }
}

fn syntax_error(source: &str, e: &serde_yaml_ng::Error) -> ManifestError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = e.to_string();
    // serde_yaml appends " at line L column C"; the location is ours to print.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    ManifestError::Syntax {
        source_name: source.to_string(),
        line,
        column,
        message,
    }
}

fn typed<'de, T: Deserialize<'de>>(
    doc: serde_yaml_ng::Deserializer<'de>,
    source: &str,
) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        let text = inner.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        // serde_yaml puts its own `path: ` in front; the path is printed apart.
        let text = match text.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') => rest.to_string(),
            _ => text,
        };
        // `unknown field `x`, expected ...`: name the field in the path, as
        // kubectl's strict validation does.
        if let Some(rest) = text.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let parent = path
                .rsplit_once('.')
                .map(|(p, _)| p)
                .filter(|_| path.ends_with(field));
            let full = match (parent, path.as_str()) {
                (Some(p), _) => format!("{p}.{field}"),
                (None, ".") | (None, "") => field.to_string(),
                (None, p) if p.ends_with(field) => p.to_string(),
                (None, p) => format!("{p}.{field}"),
            };
            return ManifestError::UnknownField {
                source_name: source.to_string(),
                path: full,
                location,
            };
        }
        ManifestError::Type {
            source_name: source.to_string(),
            path,
            location,
            message: text,
        }
    })
}
