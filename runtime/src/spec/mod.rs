//! Validated pod: what the pod worker runs. Built from the wire types by
//! [`PodSpec::try_from`], which applies Kubernetes' defaults and rules and
//! reports every problem with its field path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::error::{FieldError, ManifestError};
use crate::manifest::{self, ManifestFile};
use crate::net::{OUTBOUND_ANNOTATION, OutboundRule, PortMapping};
use crate::quantity::parse_memory;

/// Kubernetes' default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Restart every container that exits (the default).
    #[default]
    Always,
    /// Restart containers that exit non-zero.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// Kubernetes' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }

    /// Whether an app container that exited with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

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
    /// The `.wasm` file, resolved to an absolute path.
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
    /// The mount holding `workingDir` (index into `mounts`) and the path
    /// inside it: relative paths resolve there.
    pub working_dir_mount: Option<(usize, String)>,
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

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `value:`, in which `$(VAR)` refers to earlier variables.
    Text(String),
    /// A value taken as it is (a pod field, a ConfigMap or Secret key).
    Fixed(String),
    /// `fieldRef: status.podIP` / `status.podIPs`: known once the pod has
    /// its address.
    PodIp,
}

/// The most bytes a container's argv and environment may take once
/// `$(VAR)` is expanded (Linux's whole `ARG_MAX` is 2 MiB): a manifest of a
/// few KiB whose variables each double the previous one is refused instead
/// of allocating gigabytes.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// A guest's environment: names and values, in order.
pub type Environment = Vec<(String, String)>;

/// argv and environment exceed [`MAX_EXPANDED_BYTES`] once expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpansionTooLarge {
    /// `env` or `args`.
    pub field: &'static str,
    /// The variable (or argument) whose expansion crossed the bound.
    pub item: String,
}

impl std::fmt::Display for ExpansionTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: Invalid value: {:?}: argv and environment expand to more than {MAX_EXPANDED_BYTES} bytes",
            self.field, self.item
        )
    }
}

impl std::error::Error for ExpansionTooLarge {}

impl ContainerSpec {
    /// argv and environment for a run in a pod with address `pod_ip`, with
    /// the `$(VAR)` expansion of Kubernetes applied, at most
    /// [`MAX_EXPANDED_BYTES`] in all.
    pub fn resolve(&self, pod_ip: &str) -> Result<(Vec<String>, Environment), ExpansionTooLarge> {
        let mut budget = MAX_EXPANDED_BYTES;
        let too_large = |field: &'static str, item: &str| ExpansionTooLarge {
            field,
            item: item.to_string(),
        };
        let mut env: Vec<(String, String)> = Vec::with_capacity(self.env.len());
        for (name, value) in &self.env {
            let value = match value {
                EnvValue::Text(t) => expand(
                    t,
                    |n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()),
                    budget,
                )
                .ok_or_else(|| too_large("env", name))?,
                EnvValue::Fixed(v) => v.clone(),
                EnvValue::PodIp => pod_ip.to_string(),
            };
            budget = budget
                .checked_sub(name.len() + value.len() + 2)
                .ok_or_else(|| too_large("env", name))?;
            match env.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value,
                None => env.push((name.clone(), value)),
            }
        }
        let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let mut argv = Vec::with_capacity(self.args.len());
        for a in &self.args {
            let value = expand(a, lookup, budget).ok_or_else(|| too_large("args", a))?;
            budget = budget
                .checked_sub(value.len() + 1)
                .ok_or_else(|| too_large("args", a))?;
            argv.push(value);
        }
        Ok((argv, env))
    }
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
    /// A fresh directory per pod, removed with the pod.
    EmptyDir,
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
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        Self::try_from(ManifestFile::from_file(path)?)
    }

    /// Parses and validates manifest text; relative paths resolve against `base_dir`.
    pub fn from_yaml(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        Self::try_from(ManifestFile::from_yaml(text, base_dir, "<inline>")?)
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

struct Validator<'a> {
    errors: Vec<FieldError>,
    warnings: Vec<String>,
    publish: Vec<PortMapping>,
    file: &'a ManifestFile,
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A UUID in its usual text form (what the API server assigns as a uid).
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn truncate_hostname(name: &str) -> String {
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h.replace('.', "-")
}

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes the variable's value when
/// defined, `$$` is an escaped `$`, anything else is left as written.
/// `None` when the result would be longer than `limit` bytes.
pub(crate) fn expand<'v>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'v str>,
    limit: usize,
) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(limit));
    let mut rest = text;
    let push = |out: &mut String, s: &str| -> Option<()> {
        (out.len() + s.len() <= limit).then(|| out.push_str(s))
    };
    while let Some(i) = rest.find('$') {
        push(&mut out, &rest[..i])?;
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            push(&mut out, "$")?;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    match lookup(&body[..end]) {
                        Some(value) => push(&mut out, value)?,
                        // Left as written: `$(NAME)`.
                        None => push(&mut out, &rest[i..i + end + 3])?,
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    push(&mut out, "$(")?;
                    rest = body;
                }
            }
        } else {
            push(&mut out, "$")?;
            rest = after;
        }
    }
    push(&mut out, rest)?;
    Some(out)
}

impl Validator<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn ignored(&mut self, path: &str, present: bool, why: &str) {
        if present {
            self.warnings.push(format!("{path}: ignored ({why})"));
        }
    }

    fn pod(&mut self) -> Option<PodSpec> {
        let file = self.file;
        let pod = &file.pod;
        let meta = &pod.metadata;

        let name = match (&meta.name, &meta.generate_name) {
            (Some(n), _) if !n.is_empty() => n.clone(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                let suffix: String = uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .chars()
                    .take(5)
                    .collect();
                format!("{prefix}{suffix}")
            }
            _ => {
                self.err(
                    "metadata.name",
                    "Required value: name or generateName is required",
                );
                String::new()
            }
        };
        if !name.is_empty() && !is_dns_subdomain(&name) {
            self.err(
                "metadata.name",
                format!("Invalid value: {name:?}: {SUBDOMAIN_MSG}"),
            );
        }
        let namespace = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        if !is_dns_label(&namespace) {
            self.err(
                "metadata.namespace",
                format!("Invalid value: {namespace:?}: {LABEL_MSG}"),
            );
        }
        // The API server assigns a uid; one written in a manifest is kept
        // only when it is a UUID, since it becomes part of a host path.
        let uid = match meta.uid.as_deref().filter(|u| !u.is_empty()) {
            None => uuid::Uuid::new_v4().to_string(),
            Some(u) if is_uuid(u) => u.to_string(),
            Some(u) => {
                self.err(
                    "metadata.uid",
                    format!(
                        "Invalid value: {u:?}: must be a UUID such as \"0b9d6c8e-4c1e-4f3e-9a59-2f1f3c2d7a10\" (the server assigns it: leave the field out)"
                    ),
                );
                String::new()
            }
        };
        let outbound = match meta
            .annotations
            .get(OUTBOUND_ANNOTATION)
            .map(|v| OutboundRule::parse_list(v))
        {
            None => Vec::new(),
            Some(Ok(rules)) => rules,
            Some(Err(e)) => {
                self.err(
                    format!("metadata.annotations[{OUTBOUND_ANNOTATION}]"),
                    format!("Invalid value: {e}"),
                );
                Vec::new()
            }
        };
        self.ignored(
            "metadata.ownerReferences",
            meta.owner_references.is_some(),
            "there is no garbage collector outside a cluster",
        );
        self.ignored(
            "metadata.finalizers",
            meta.finalizers.is_some(),
            "there is no API server holding the object",
        );

        let spec = &pod.spec;
        self.refuse_host_namespaces(spec);
        self.cluster_only_fields(spec);

        let restart_policy = match spec.restart_policy.as_deref() {
            None | Some("Always") => RestartPolicy::Always,
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            Some(other) => {
                self.err(
                    "spec.restartPolicy",
                    format!("Unsupported value: {other:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
                );
                RestartPolicy::Always
            }
        };
        let grace = match spec.termination_grace_period_seconds {
            None => DEFAULT_GRACE,
            Some(s) if s >= 0 => Duration::from_secs(s as u64),
            Some(s) => {
                self.err(
                    "spec.terminationGracePeriodSeconds",
                    format!("Invalid value: {s}: must be >= 0"),
                );
                DEFAULT_GRACE
            }
        };
        let active_deadline = match spec.active_deadline_seconds {
            None => None,
            Some(s) if (1..=i64::from(i32::MAX)).contains(&s) => {
                Some(Duration::from_secs(s as u64))
            }
            Some(s) => {
                self.err(
                    "spec.activeDeadlineSeconds",
                    format!("Invalid value: {s}: must be between 1 and 2147483647, inclusive"),
                );
                None
            }
        };
        let hostname = match &spec.hostname {
            Some(h) => {
                if !is_dns_label(h) {
                    self.err(
                        "spec.hostname",
                        format!("Invalid value: {h:?}: {LABEL_MSG}"),
                    );
                }
                h.clone()
            }
            None => truncate_hostname(&name),
        };

        // Volumes.
        let mut volumes = Vec::new();
        let mut volume_index = HashMap::new();
        for (i, vol) in spec.volumes.iter().enumerate() {
            let field = format!("spec.volumes[{i}]");
            if vol.name.is_empty() {
                self.err(format!("{field}.name"), "Required value");
            } else if !is_dns_label(&vol.name) {
                self.err(
                    format!("{field}.name"),
                    format!("Invalid value: {:?}: {LABEL_MSG}", vol.name),
                );
            } else if volume_index.insert(vol.name.clone(), i).is_some() {
                self.err(
                    format!("{field}.name"),
                    format!("Duplicate value: {:?}", vol.name),
                );
            }
            if let Some(source) = self.volume_source(vol, &field) {
                volumes.push(VolumeSpec {
                    name: vol.name.clone(),
                    source,
                    field,
                });
            } else {
                volumes.push(VolumeSpec {
                    name: vol.name.clone(),
                    source: VolumeSource::EmptyDir,
                    field,
                });
            }
        }

        // Containers.
        if spec.containers.is_empty() {
            self.err("spec.containers", "Required value");
        }
        let ctx = PodFields {
            name: &name,
            namespace: &namespace,
            uid: &uid,
            labels: &meta.labels,
            annotations: &meta.annotations,
        };
        let mut names = HashSet::new();
        let mut port_names = HashSet::new();
        let mut init_containers = Vec::new();
        for (i, c) in spec.init_containers.iter().enumerate() {
            let field = format!("spec.initContainers[{i}]");
            if let Some(c) = self.container(
                c,
                &field,
                ContainerKind::Init,
                &volumes,
                &volume_index,
                &ctx,
                &mut names,
                &mut port_names,
            ) {
                init_containers.push(c);
            }
        }
        let mut containers = Vec::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let field = format!("spec.containers[{i}]");
            if let Some(c) = self.container(
                c,
                &field,
                ContainerKind::App,
                &volumes,
                &volume_index,
                &ctx,
                &mut names,
                &mut port_names,
            ) {
                containers.push(c);
            }
        }

        let mut wire = pod.clone();
        wire.api_version = "v1".into();
        wire.kind = "Pod".into();
        wire.metadata.name = Some(name.clone());
        wire.metadata.namespace = Some(namespace.clone());
        wire.metadata.uid = Some(uid.clone());
        wire.spec.restart_policy = Some(restart_policy.as_str().into());
        wire.spec.termination_grace_period_seconds = Some(grace.as_secs() as i64);

        Some(PodSpec {
            name,
            namespace,
            uid,
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            hostname,
            init_containers,
            containers,
            volumes,
            restart_policy,
            termination_grace_period: grace,
            active_deadline,
            warnings: std::mem::take(&mut self.warnings),
            publish: std::mem::take(&mut self.publish),
            outbound,
            source: file.source.clone(),
            wire,
        })
    }

    fn refuse_host_namespaces(&mut self, spec: &manifest::PodSpec) {
        if spec.host_network == Some(true) {
            self.err(
                "spec.hostNetwork",
                "Forbidden: a wasm pod has no host network namespace to join; its containers share a virtual loopback",
            );
        }
        if spec.host_pid == Some(true) {
            self.err(
                "spec.hostPID",
                "Forbidden: wasm guests are not host processes; there is no PID namespace to share",
            );
        }
        if spec.host_ipc == Some(true) {
            self.err(
                "spec.hostIPC",
                "Forbidden: wasm guests have no System V IPC; there is no IPC namespace to share",
            );
        }
        if spec.share_process_namespace == Some(true) {
            self.err(
                "spec.shareProcessNamespace",
                "Forbidden: wasm guests are not processes and cannot see or signal each other",
            );
        }
        if let Some(sc) = &spec.security_context {
            if sc.sysctls.is_some() {
                self.err(
                    "spec.securityContext.sysctls",
                    "Forbidden: a wasm pod has no kernel to apply sysctls to",
                );
            }
            let identity = sc.run_as_user.is_some()
                || sc.run_as_group.is_some()
                || sc.run_as_non_root.is_some()
                || sc.fs_group.is_some()
                || sc.supplemental_groups.is_some();
            self.ignored(
                "spec.securityContext",
                identity,
                "wasm guests have no user or group identity",
            );
            self.ignored(
                "spec.securityContext.seccompProfile",
                sc.seccomp_profile.is_some(),
                "wasm guests make no system calls",
            );
        }
    }

    fn cluster_only_fields(&mut self, spec: &manifest::PodSpec) {
        let sched = "cluster scheduling; this runtime is the node";
        self.ignored("spec.nodeName", spec.node_name.is_some(), sched);
        self.ignored("spec.nodeSelector", spec.node_selector.is_some(), sched);
        self.ignored("spec.affinity", spec.affinity.is_some(), sched);
        self.ignored("spec.tolerations", spec.tolerations.is_some(), sched);
        self.ignored("spec.schedulerName", spec.scheduler_name.is_some(), sched);
        self.ignored(
            "spec.priorityClassName",
            spec.priority_class_name.is_some(),
            sched,
        );
        self.ignored("spec.priority", spec.priority.is_some(), sched);
        self.ignored(
            "spec.preemptionPolicy",
            spec.preemption_policy.is_some(),
            sched,
        );
        self.ignored(
            "spec.topologySpreadConstraints",
            spec.topology_spread_constraints.is_some(),
            sched,
        );
        self.ignored(
            "spec.dnsPolicy",
            spec.dns_policy.is_some(),
            "there is no cluster DNS",
        );
        self.ignored(
            "spec.dnsConfig",
            spec.dns_config.is_some(),
            "there is no cluster DNS",
        );
        let api = "there is no API server to authenticate to";
        self.ignored(
            "spec.serviceAccountName",
            spec.service_account_name.is_some(),
            api,
        );
        self.ignored("spec.serviceAccount", spec.service_account.is_some(), api);
        self.ignored(
            "spec.automountServiceAccountToken",
            spec.automount_service_account_token.is_some(),
            api,
        );
        self.ignored(
            "spec.enableServiceLinks",
            spec.enable_service_links.is_some(),
            "there are no cluster services",
        );
        self.ignored(
            "spec.imagePullSecrets",
            spec.image_pull_secrets.is_some(),
            "images are local .wasm files",
        );
        self.ignored(
            "spec.runtimeClassName",
            spec.runtime_class_name.is_some(),
            "wasipod is the only runtime",
        );
    }

    fn volume_source(&mut self, vol: &manifest::Volume, field: &str) -> Option<VolumeSource> {
        let cluster: [(&str, bool); 7] = [
            (
                "persistentVolumeClaim",
                vol.persistent_volume_claim.is_some(),
            ),
            ("projected", vol.projected.is_some()),
            ("downwardAPI", vol.downward_api.is_some()),
            ("nfs", vol.nfs.is_some()),
            ("csi", vol.csi.is_some()),
            ("ephemeral", vol.ephemeral.is_some()),
            ("image", vol.image.is_some()),
        ];
        let mut kinds: Vec<&str> = cluster
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect();
        for (k, set) in [
            ("emptyDir", vol.empty_dir.is_some()),
            ("hostPath", vol.host_path.is_some()),
            ("configMap", vol.config_map.is_some()),
            ("secret", vol.secret.is_some()),
        ] {
            if set {
                kinds.push(k);
            }
        }
        match kinds.len() {
            0 => {
                self.err(field, "Required value: must specify a volume type (emptyDir, hostPath, configMap or secret)");
                return None;
            }
            1 => {}
            _ => {
                self.err(
                    format!("{field}.{}", kinds[1]),
                    "Forbidden: may not specify more than 1 volume type",
                );
                return None;
            }
        }
        if let Some((k, _)) = cluster.iter().find(|(_, set)| *set) {
            self.err(
                format!("{field}.{k}"),
                "Forbidden: this volume type needs a cluster; wasipod provides emptyDir, hostPath, configMap and secret",
            );
            return None;
        }
        if let Some(e) = &vol.empty_dir {
            if let Some(m) = e.medium.as_deref()
                && !m.is_empty()
                && m != "Memory"
            {
                self.err(
                    format!("{field}.emptyDir.medium"),
                    format!("Unsupported value: {m:?}: supported values: \"\", \"Memory\""),
                );
            }
            if let Some(limit) = &e.size_limit {
                if let Err(e) = parse_memory(&value_text(limit)) {
                    self.err(
                        format!("{field}.emptyDir.sizeLimit"),
                        format!("Invalid value: {e}"),
                    );
                }
                self.warnings.push(format!(
                    "{field}.emptyDir.sizeLimit: ignored (not enforced on the host folder)"
                ));
            }
            return Some(VolumeSource::EmptyDir);
        }
        if let Some(h) = &vol.host_path {
            let f = format!("{field}.hostPath");
            if h.path.is_empty() {
                self.err(format!("{f}.path"), "Required value");
                return None;
            }
            if Path::new(&h.path)
                .components()
                .any(|c| c == Component::ParentDir)
            {
                self.err(
                    format!("{f}.path"),
                    format!("Invalid value: {:?}: must not contain '..'", h.path),
                );
                return None;
            }
            let create = match h.type_.as_deref() {
                None | Some("") | Some("Directory") => false,
                Some("DirectoryOrCreate") => true,
                Some(t @ ("File" | "FileOrCreate" | "Socket" | "CharDevice" | "BlockDevice")) => {
                    self.err(
                        format!("{f}.type"),
                        format!("Unsupported value: {t:?}: a WASI mount is a directory; supported values: \"\", \"Directory\", \"DirectoryOrCreate\""),
                    );
                    return None;
                }
                Some(t) => {
                    self.err(
                        format!("{f}.type"),
                        format!("Unsupported value: {t:?}: supported values: \"\", \"Directory\", \"DirectoryOrCreate\""),
                    );
                    return None;
                }
            };
            let path = self.file.base_dir.join(&h.path);
            return Some(VolumeSource::HostPath { path, create });
        }
        if let Some(cm) = &vol.config_map {
            let f = format!("{field}.configMap");
            if cm.name.is_empty() {
                self.err(format!("{f}.name"), "Required value");
                return None;
            }
            let data = self.file.config_maps.get(&cm.name).map(|c| {
                let mut m: BTreeMap<String, Vec<u8>> = c
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                    .collect();
                for (k, v) in &c.binary_data {
                    match decode_base64(v) {
                        Some(b) => {
                            m.insert(k.clone(), b);
                        }
                        None => self.errors.push(FieldError::new(
                            format!("ConfigMap {:?} binaryData[{k:?}]", cm.name),
                            "Invalid value: not valid base64",
                        )),
                    }
                }
                m
            });
            return self.key_files(
                &f,
                "ConfigMap",
                &cm.name,
                data,
                &cm.items,
                cm.optional == Some(true),
            );
        }
        if let Some(s) = &vol.secret {
            let f = format!("{field}.secret");
            if s.secret_name.is_empty() {
                self.err(format!("{f}.secretName"), "Required value");
                return None;
            }
            let data = self.secret_data(&s.secret_name);
            return self.key_files(
                &f,
                "Secret",
                &s.secret_name,
                data,
                &s.items,
                s.optional == Some(true),
            );
        }
        None
    }

    fn secret_data(&mut self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.file.secrets.get(name)?;
        let mut m = BTreeMap::new();
        for (k, v) in &secret.data {
            match decode_base64(v) {
                Some(b) => {
                    m.insert(k.clone(), b);
                }
                None => self.err(
                    format!("Secret {name:?} data[{k:?}]"),
                    "Invalid value: not valid base64",
                ),
            }
        }
        for (k, v) in &secret.string_data {
            m.insert(k.clone(), v.as_bytes().to_vec());
        }
        Some(m)
    }

    fn config_map_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.file.config_maps.get(name).map(|c| c.data.clone())
    }

    fn key_files(
        &mut self,
        field: &str,
        kind: &str,
        name: &str,
        data: Option<BTreeMap<String, Vec<u8>>>,
        items: &[manifest::KeyToPath],
        optional: bool,
    ) -> Option<VolumeSource> {
        let Some(data) = data else {
            if optional {
                return Some(VolumeSource::Files { files: Vec::new() });
            }
            self.err(
                format!("{field}.name"),
                format!("Not found: {name:?}: no {kind} of that name in this file (add it as another YAML document)"),
            );
            return None;
        };
        let mut files = Vec::new();
        if items.is_empty() {
            for (k, v) in data {
                files.push((k, v));
            }
        } else {
            for (i, item) in items.iter().enumerate() {
                if !is_relative_clean(&item.path) {
                    self.err(
                        format!("{field}.items[{i}].path"),
                        format!(
                            "Invalid value: {:?}: must be a relative path without '..'",
                            item.path
                        ),
                    );
                    continue;
                }
                match data.get(&item.key) {
                    Some(v) => files.push((item.path.clone(), v.clone())),
                    None if optional => {}
                    None => self.err(
                        format!("{field}.items[{i}].key"),
                        format!("Not found: {:?}: {kind} {name:?} has no such key", item.key),
                    ),
                }
            }
        }
        for (path, _) in &files {
            if !is_relative_clean(path) {
                self.err(
                    field,
                    format!("Invalid value: key {path:?}: must be a relative path without '..'"),
                );
            }
        }
        Some(VolumeSource::Files { files })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one validator step per field group; the arguments are the fields it reads"
    )]
    fn container(
        &mut self,
        c: &manifest::Container,
        field: &str,
        kind: ContainerKind,
        volumes: &[VolumeSpec],
        volume_index: &HashMap<String, usize>,
        pod: &PodFields<'_>,
        names: &mut HashSet<String>,
        port_names: &mut HashSet<String>,
    ) -> Option<ContainerSpec> {
        let start_errors = self.errors.len();
        if c.name.is_empty() {
            self.err(format!("{field}.name"), "Required value");
        } else if !is_dns_label(&c.name) {
            self.err(
                format!("{field}.name"),
                format!("Invalid value: {:?}: {LABEL_MSG}", c.name),
            );
        } else if !names.insert(c.name.clone()) {
            self.err(
                format!("{field}.name"),
                format!("Duplicate value: {:?}", c.name),
            );
        }

        let image_path = self.image(&c.image, &format!("{field}.image"));

        match (kind, c.restart_policy.as_deref()) {
            (_, None) => {}
            (ContainerKind::Init, Some("Always")) => {}
            (ContainerKind::Init, Some(other)) => self.err(
                format!("{field}.restartPolicy"),
                format!("Unsupported value: {other:?}: supported values: \"Always\""),
            ),
            (ContainerKind::App, Some(_)) => self.err(
                format!("{field}.restartPolicy"),
                "Forbidden: may not be set for non-init containers",
            ),
        }
        let ports: Vec<(Option<String>, i64)> = c
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.container_port))
            .collect();
        let startup_probe = c
            .startup_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.startupProbe"), &ports, true));
        let liveness_probe = c
            .liveness_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.livenessProbe"), &ports, true));
        let readiness_probe = c
            .readiness_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.readinessProbe"), &ports, false));
        let sidecar = kind == ContainerKind::Init && c.restart_policy.as_deref() == Some("Always");
        if kind == ContainerKind::Init && !sidecar {
            for (name, set) in [
                ("startupProbe", c.startup_probe.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
            ] {
                if set {
                    self.err(
                        format!("{field}.{name}"),
                        "Forbidden: may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
        let (mut post_start, mut pre_stop) = (None, None);
        if let Some(l) = &c.lifecycle {
            let lf = format!("{field}.lifecycle");
            if l.stop_signal.is_some() {
                self.err(
                    format!("{lf}.stopSignal"),
                    "Forbidden: WASI has no signals; see the SIGTERM contract",
                );
            }
            if let Some(h) = &l.post_start {
                post_start = self.action(
                    &h.exec,
                    &h.http_get,
                    &h.tcp_socket,
                    &h.sleep,
                    &h.grpc,
                    &format!("{lf}.postStart"),
                    &ports,
                );
            }
            if let Some(h) = &l.pre_stop {
                pre_stop = self.action(
                    &h.exec,
                    &h.http_get,
                    &h.tcp_socket,
                    &h.sleep,
                    &h.grpc,
                    &format!("{lf}.preStop"),
                    &ports,
                );
            }
        }
        if c.stdin == Some(true) || c.stdin_once == Some(true) {
            self.err(
                format!("{field}.stdin"),
                "Forbidden: guests have no attached standard input (it is empty)",
            );
        }
        if c.tty == Some(true) {
            self.err(format!("{field}.tty"), "Forbidden: guests have no terminal");
        }
        self.ignored(
            &format!("{field}.imagePullPolicy"),
            c.image_pull_policy.is_some(),
            "images are local .wasm files",
        );
        self.ignored(
            &format!("{field}.terminationMessagePath"),
            c.termination_message_path.is_some() || c.termination_message_policy.is_some(),
            "the container log holds the termination message",
        );
        self.security_context(c, field);

        // Ports.
        for (i, p) in c.ports.iter().enumerate() {
            let pf = format!("{field}.ports[{i}]");
            if !(1..=65535).contains(&p.container_port) {
                self.err(
                    format!("{pf}.containerPort"),
                    format!(
                        "Invalid value: {}: must be between 1 and 65535, inclusive",
                        p.container_port
                    ),
                );
            }
            if let Some(proto) = p.protocol.as_deref()
                && !matches!(proto, "TCP" | "UDP" | "SCTP")
            {
                self.err(
                    format!("{pf}.protocol"),
                    format!(
                        "Unsupported value: {proto:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                    ),
                );
            }
            if let Some(n) = &p.name {
                let valid = !n.is_empty()
                    && n.len() <= 15
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && n.bytes().any(|b| b.is_ascii_lowercase())
                    && !n.starts_with('-')
                    && !n.ends_with('-')
                    && !n.contains("--");
                if !valid {
                    self.err(
                        format!("{pf}.name"),
                        format!("Invalid value: {n:?}: must be no more than 15 characters, contain only lowercase letters, digits and '-', and contain at least one letter"),
                    );
                } else if !port_names.insert(n.clone()) {
                    self.err(format!("{pf}.name"), format!("Duplicate value: {n:?}"));
                }
            }
            if let Some(host_port) = p.host_port {
                self.host_port(p, host_port, &pf);
            } else if p.host_ip.is_some() {
                self.err(
                    format!("{pf}.hostIP"),
                    "Invalid value: hostIP needs a hostPort",
                );
            }
        }

        // Resources.
        let mut memory_limit = None;
        if let Some(r) = &c.resources {
            for (k, v) in &r.limits {
                let f = format!("{field}.resources.limits[{k}]");
                match k.as_str() {
                    "memory" => match parse_memory(&value_text(v)) {
                        Ok(0) => self.err(f, "Invalid value: \"0\": must be greater than 0"),
                        Ok(b) => memory_limit = Some(b),
                        Err(e) => self.err(f, format!("Invalid value: {e}")),
                    },
                    "cpu" => {
                        if let Err(e) = crate::quantity::parse_quantity(&value_text(v)) {
                            self.err(f.clone(), format!("Invalid value: {e}"));
                        }
                        self.warnings.push(format!(
                            "{f}: not enforced as a quota; guests share the CPU fairly through epoch preemption"
                        ));
                    }
                    "ephemeral-storage" => {
                        self.warnings.push(format!("{f}: ignored (not enforced on the host folders)"));
                    }
                    other => self.err(
                        f,
                        format!("Unsupported value: {other:?}: supported values: \"cpu\", \"memory\", \"ephemeral-storage\""),
                    ),
                }
            }
            self.ignored(
                &format!("{field}.resources.requests"),
                !r.requests.is_empty(),
                "requests only matter to a cluster scheduler",
            );
        }

        // Mounts.
        let mut mounts = Vec::new();
        let mut paths = HashSet::new();
        for (i, m) in c.volume_mounts.iter().enumerate() {
            let mf = format!("{field}.volumeMounts[{i}]");
            let volume = match volume_index.get(&m.name) {
                Some(&v) => Some(v),
                None if m.name.is_empty() => {
                    self.err(format!("{mf}.name"), "Required value");
                    None
                }
                None => {
                    self.err(format!("{mf}.name"), format!("Not found: {:?}", m.name));
                    None
                }
            };
            if m.mount_path.is_empty() {
                self.err(format!("{mf}.mountPath"), "Required value");
            } else if !m.mount_path.starts_with('/') {
                self.err(
                    format!("{mf}.mountPath"),
                    format!(
                        "Invalid value: {:?}: must be an absolute path in the guest",
                        m.mount_path
                    ),
                );
            } else if Path::new(&m.mount_path)
                .components()
                .any(|c| c == Component::ParentDir)
            {
                self.err(
                    format!("{mf}.mountPath"),
                    format!("Invalid value: {:?}: must not contain '..'", m.mount_path),
                );
            } else if !paths.insert(m.mount_path.trim_end_matches('/').to_string()) {
                self.err(
                    format!("{mf}.mountPath"),
                    format!("Invalid value: {:?}: must be unique", m.mount_path),
                );
            }
            if let Some(sp) = &m.sub_path
                && !sp.is_empty()
                && !is_relative_clean(sp)
            {
                self.err(
                    format!("{mf}.subPath"),
                    format!("Invalid value: {sp:?}: must be a relative path without '..'"),
                );
            }
            self.ignored(
                &format!("{mf}.mountPropagation"),
                m.mount_propagation.is_some(),
                "guests cannot mount anything",
            );
            if let Some(v) = volume {
                let files = matches!(volumes[v].source, VolumeSource::Files { .. });
                if files && m.read_only == Some(false) {
                    self.warnings.push(format!(
                        "{mf}.readOnly: configMap and secret volumes are always mounted read-only"
                    ));
                }
                mounts.push(MountSpec {
                    volume: v,
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only == Some(true) || files,
                    sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
                    field: mf,
                });
            }
        }
        let mut working_dir_mount = None;
        if let Some(wd) = &c.working_dir {
            if !wd.starts_with('/')
                || Path::new(wd)
                    .components()
                    .any(|c| c == Component::ParentDir)
            {
                self.err(
                    format!("{field}.workingDir"),
                    format!("Invalid value: {wd:?}: must be an absolute path without '..'"),
                );
            } else {
                // The deepest mount that holds the working directory.
                working_dir_mount = mounts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        Path::new(wd).strip_prefix(&m.mount_path).ok().map(|rest| {
                            (i, m.mount_path.len(), rest.to_string_lossy().into_owned())
                        })
                    })
                    .max_by_key(|(_, len, _)| *len)
                    .map(|(i, _, rest)| (i, rest));
                if working_dir_mount.is_none() {
                    self.warnings.push(format!(
                        "{field}.workingDir: {wd:?} is not inside any volumeMount, so relative paths cannot resolve (a wasm guest has no root filesystem, only its mounts)"
                    ));
                }
            }
        }

        // Environment: envFrom first, then env (later entries win);
        // `$(VAR)` is expanded at start (ContainerSpec::resolve).
        let mut env: Vec<(String, EnvValue)> = Vec::new();
        let set = |env: &mut Vec<(String, EnvValue)>, k: String, v: EnvValue| {
            if let Some(slot) = env.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = v;
            } else {
                env.push((k, v));
            }
        };
        for (i, from) in c.env_from.iter().enumerate() {
            let ef = format!("{field}.envFrom[{i}]");
            let prefix = from.prefix.clone().unwrap_or_default();
            let (kind, r, data) = match (&from.config_map_ref, &from.secret_ref) {
                (Some(r), None) => (
                    "ConfigMap",
                    r,
                    self.config_map_data(&r.name)
                        .map(|m| m.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()),
                ),
                (None, Some(r)) => ("Secret", r, self.secret_data(&r.name)),
                _ => {
                    self.err(
                        ef,
                        "Invalid value: must specify exactly one of configMapRef and secretRef",
                    );
                    continue;
                }
            };
            let data: Option<BTreeMap<String, Vec<u8>>> = data;
            match data {
                Some(d) => {
                    for (k, v) in d {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            EnvValue::Fixed(String::from_utf8_lossy(&v).into_owned()),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => self.err(
                    format!(
                        "{ef}.{}.name",
                        if kind == "Secret" {
                            "secretRef"
                        } else {
                            "configMapRef"
                        }
                    ),
                    format!(
                        "Not found: {:?}: no {kind} of that name in this file",
                        r.name
                    ),
                ),
            }
        }
        for (i, e) in c.env.iter().enumerate() {
            let ef = format!("{field}.env[{i}]");
            if e.name.is_empty() {
                self.err(format!("{ef}.name"), "Required value");
                continue;
            }
            if e.name.contains('=') || !e.name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                self.err(
                    format!("{ef}.name"),
                    format!("Invalid value: {:?}: a valid environment variable name must consist only of printable ASCII characters other than '='", e.name),
                );
                continue;
            }
            let value = match (&e.value, &e.value_from) {
                (Some(_), Some(_)) => {
                    self.err(
                        format!("{ef}.valueFrom"),
                        "Invalid value: may not be specified when `value` is not empty",
                    );
                    continue;
                }
                (v, None) => EnvValue::Text(v.clone().unwrap_or_default()),
                (None, Some(src)) => match self.env_source(src, &format!("{ef}.valueFrom"), pod) {
                    Some(v) => v,
                    None => continue,
                },
            };
            set(&mut env, e.name.clone(), value);
        }
        let mut argv: Vec<String> = c.command.iter().chain(&c.args).cloned().collect();
        if c.command.is_empty() {
            let program = image_path
                .as_ref()
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| c.name.clone());
            argv.insert(0, program);
        }

        if self.errors.len() > start_errors {
            return None;
        }
        let spec = ContainerSpec {
            name: c.name.clone(),
            kind,
            field: field.to_string(),
            image_path: image_path?,
            image: c.image.clone(),
            args: argv,
            env,
            working_dir: c.working_dir.clone(),
            mounts,
            memory_limit,
            working_dir_mount,
            startup_probe,
            liveness_probe,
            readiness_probe,
            post_start,
            pre_stop,
            sidecar,
        };
        // The longest pod IP text (IPv6) stands in for the real address.
        if let Err(e) = spec.resolve("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
            self.err(
                format!("{field}.{}", e.field),
                format!(
                    "Invalid value: {:?}: argv and environment expand to more than {MAX_EXPANDED_BYTES} bytes",
                    e.item
                ),
            );
            return None;
        }
        Some(spec)
    }

    fn probe(
        &mut self,
        p: &manifest::Probe,
        field: &str,
        ports: &[(Option<String>, i64)],
        single_success: bool,
    ) -> Option<ProbeSpec> {
        let action = self.action(
            &p.exec,
            &p.http_get,
            &p.tcp_socket,
            &None,
            &p.grpc,
            field,
            ports,
        );
        // Kubernetes' probe fields are int32 (terminationGracePeriodSeconds
        // is int64): a larger number is refused, never truncated.
        let mut seconds = |name: &str, v: Option<i64>, default: i64, min: i64, max: i64| -> u64 {
            match v {
                None => default as u64,
                Some(v) if (min..=max).contains(&v) => v as u64,
                Some(v) if v < min => {
                    self.errors.push(FieldError::new(
                        format!("{field}.{name}"),
                        format!("Invalid value: {v}: must be greater than or equal to {min}"),
                    ));
                    default as u64
                }
                Some(v) => {
                    self.errors.push(FieldError::new(
                        format!("{field}.{name}"),
                        format!("Invalid value: {v}: must be between {min} and {max}, inclusive"),
                    ));
                    default as u64
                }
            }
        };
        let int32 = i64::from(i32::MAX);
        let initial_delay = seconds("initialDelaySeconds", p.initial_delay_seconds, 0, 0, int32);
        let period = seconds("periodSeconds", p.period_seconds, 10, 1, int32);
        let timeout = seconds("timeoutSeconds", p.timeout_seconds, 1, 1, int32);
        let success_threshold = seconds("successThreshold", p.success_threshold, 1, 1, int32);
        let failure_threshold = seconds("failureThreshold", p.failure_threshold, 3, 1, int32);
        let grace = p
            .termination_grace_period_seconds
            .map(|g| seconds("terminationGracePeriodSeconds", Some(g), 0, 1, i64::MAX));
        if single_success && success_threshold != 1 {
            self.err(
                format!("{field}.successThreshold"),
                "Invalid value: must be 1",
            );
        }
        Some(ProbeSpec {
            action: action?,
            initial_delay: Duration::from_secs(initial_delay),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(timeout),
            success_threshold: success_threshold as u32,
            failure_threshold: failure_threshold as u32,
            grace: grace.map(Duration::from_secs),
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one validator step per field group; the arguments are the fields it reads"
    )]
    fn action(
        &mut self,
        exec: &Option<manifest::ExecAction>,
        http: &Option<manifest::HttpGetAction>,
        tcp: &Option<manifest::TcpSocketAction>,
        sleep: &Option<manifest::SleepAction>,
        grpc: &Option<Value>,
        field: &str,
        ports: &[(Option<String>, i64)],
    ) -> Option<Action> {
        let count = [
            exec.is_some(),
            http.is_some(),
            tcp.is_some(),
            sleep.is_some(),
            grpc.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            self.err(field, "Required value: must specify exactly one handler (exec, httpGet, tcpSocket or sleep)");
            return None;
        }
        if grpc.is_some() {
            self.err(format!("{field}.grpc"), "Unsupported value: gRPC health checks are not supported by wasipod; use httpGet, tcpSocket or exec");
            return None;
        }
        let mut port = |p: &manifest::IntOrString, f: String| -> Option<u16> {
            match p {
                manifest::IntOrString::Int(n) => match u16::try_from(*n) {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        self.err(
                            f,
                            format!("Invalid value: {n}: must be between 1 and 65535, inclusive"),
                        );
                        None
                    }
                },
                manifest::IntOrString::String(name) => {
                    match ports
                        .iter()
                        .find(|(n, _)| n.as_deref() == Some(name.as_str()))
                    {
                        Some((_, number)) => u16::try_from(*number).ok(),
                        None => {
                            self.err(
                                f,
                                format!("Invalid value: {name:?}: no container port of that name"),
                            );
                            None
                        }
                    }
                }
            }
        };
        if let Some(e) = exec {
            if e.command.is_empty() {
                self.err(format!("{field}.exec.command"), "Required value");
                return None;
            }
            return Some(Action::Exec(e.command.clone()));
        }
        if let Some(h) = http {
            if let Some(scheme) = h.scheme.as_deref()
                && scheme != "HTTP"
            {
                self.err(
                    format!("{field}.httpGet.scheme"),
                    format!("Unsupported value: {scheme:?}: supported values: \"HTTP\" (TLS probes are not supported by wasipod)"),
                );
                return None;
            }
            let port = port(&h.port, format!("{field}.httpGet.port"))?;
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            return Some(Action::HttpGet {
                port,
                path: if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                },
                host: h.host.clone(),
                headers: h
                    .http_headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            });
        }
        if let Some(t) = tcp {
            return Some(Action::TcpSocket {
                port: port(&t.port, format!("{field}.tcpSocket.port"))?,
            });
        }
        if let Some(s) = sleep {
            if s.seconds < 0 {
                self.err(
                    format!("{field}.sleep.seconds"),
                    "Invalid value: must be greater than or equal to 0",
                );
                return None;
            }
            return Some(Action::Sleep(Duration::from_secs(s.seconds as u64)));
        }
        None
    }

    fn host_port(&mut self, p: &manifest::ContainerPort, host_port: i64, pf: &str) {
        let Ok(host_port) = u16::try_from(host_port)
            .map_err(|_| ())
            .and_then(|v| if v == 0 { Err(()) } else { Ok(v) })
        else {
            self.err(
                format!("{pf}.hostPort"),
                format!("Invalid value: {host_port}: must be between 1 and 65535, inclusive"),
            );
            return;
        };
        if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
            self.err(
                format!("{pf}.protocol"),
                "Unsupported value: only TCP ports can be published: the pod network carries TCP only",
            );
            return;
        }
        let host_ip = match p.host_ip.as_deref() {
            None | Some("") => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Some(ip) => match ip.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    self.err(
                        format!("{pf}.hostIP"),
                        format!("Invalid value: {ip:?}: must be a valid IP address"),
                    );
                    return;
                }
            },
        };
        if self.publish.iter().any(|m| {
            m.host_port == host_port
                && (m.host_ip == host_ip || m.host_ip.is_unspecified() || host_ip.is_unspecified())
        }) {
            self.err(
                format!("{pf}.hostPort"),
                format!("Duplicate value: \"{host_port}/TCP\""),
            );
            return;
        }
        let Ok(container_port) = u16::try_from(p.container_port) else {
            return;
        };
        self.publish.push(PortMapping {
            host_ip,
            host_port,
            container_port,
            source: format!("{pf}.hostPort"),
        });
    }

    fn security_context(&mut self, c: &manifest::Container, field: &str) {
        let Some(sc) = &c.security_context else {
            return;
        };
        let f = format!("{field}.securityContext");
        if sc.privileged == Some(true) {
            self.err(
                format!("{f}.privileged"),
                "Forbidden: a wasm guest cannot be privileged: it only ever reaches its mounts and its pod's network",
            );
        }
        if let Some(caps) = &sc.capabilities
            && !caps.add.is_empty()
        {
            self.err(
                format!("{f}.capabilities.add"),
                format!(
                    "Forbidden: Linux capabilities have no meaning for a wasm guest: {:?}",
                    caps.add
                ),
            );
        }
        if sc.allow_privilege_escalation == Some(true) {
            self.err(
                format!("{f}.allowPrivilegeEscalation"),
                "Forbidden: a wasm guest has no privileges to escalate to",
            );
        }
        if let Some(pm) = sc.proc_mount.as_deref()
            && pm != "Default"
        {
            self.err(
                format!("{f}.procMount"),
                format!("Forbidden: {pm:?}: a wasm guest has no /proc"),
            );
        }
        let identity =
            sc.run_as_user.is_some() || sc.run_as_group.is_some() || sc.run_as_non_root.is_some();
        self.ignored(&f, identity, "wasm guests have no user or group identity");
        self.ignored(
            &format!("{f}.seccompProfile"),
            sc.seccomp_profile.is_some(),
            "wasm guests make no system calls",
        );
    }

    fn image(&mut self, image: &str, field: &str) -> Option<PathBuf> {
        if image.is_empty() {
            self.err(field, "Required value");
            return None;
        }
        let raw = image.strip_prefix("file://").unwrap_or(image);
        if raw.contains("://") {
            self.err(
                field,
                format!("Unsupported value: {image:?}: an image is a path to a .wasm file (relative, absolute or file://); registries are not supported yet"),
            );
            return None;
        }
        let path = self.file.base_dir.join(raw);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Some(path),
            Ok(_) => {
                self.err(field, format!("not a file: {}", path.display()));
                None
            }
            Err(_) => {
                self.err(field, format!("file not found: {}", path.display()));
                None
            }
        }
    }

    fn env_source(
        &mut self,
        src: &manifest::EnvVarSource,
        field: &str,
        pod: &PodFields<'_>,
    ) -> Option<EnvValue> {
        let count = [
            src.field_ref.is_some(),
            src.config_map_key_ref.is_some(),
            src.secret_key_ref.is_some(),
            src.resource_field_ref.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            self.err(
                field,
                "Invalid value: must have exactly one of fieldRef, configMapKeyRef, secretKeyRef",
            );
            return None;
        }
        if src.resource_field_ref.is_some() {
            self.err(
                format!("{field}.resourceFieldRef"),
                "Unsupported value: resource limits are not exposed to guests",
            );
            return None;
        }
        if let Some(fr) = &src.field_ref {
            let path = fr.field_path.as_str();
            let keyed = |prefix: &str| {
                path.strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix("']"))
                    .map(str::to_string)
            };
            if matches!(path, "status.podIP" | "status.podIPs") {
                return Some(EnvValue::PodIp);
            }
            let value = match path {
                "metadata.name" => Some(pod.name.to_string()),
                "metadata.namespace" => Some(pod.namespace.to_string()),
                "metadata.uid" => Some(pod.uid.to_string()),
                _ => {
                    if let Some(k) = keyed("metadata.labels['") {
                        Some(pod.labels.get(&k).cloned().unwrap_or_default())
                    } else {
                        keyed("metadata.annotations['")
                            .map(|k| pod.annotations.get(&k).cloned().unwrap_or_default())
                    }
                }
            };
            if value.is_none() {
                self.err(
                    format!("{field}.fieldRef.fieldPath"),
                    format!("Unsupported value: {path:?}: supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\", \"status.podIP\", \"status.podIPs\""),
                );
            }
            return value.map(EnvValue::Fixed);
        }
        let (kind, r, data) = if let Some(r) = &src.config_map_key_ref {
            (
                "ConfigMap",
                r,
                self.config_map_data(&r.name)
                    .map(|m| m.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()),
            )
        } else if let Some(r) = &src.secret_key_ref {
            ("Secret", r, self.secret_data(&r.name))
        } else {
            return None;
        };
        let data: Option<BTreeMap<String, Vec<u8>>> = data;
        let sub = if kind == "Secret" {
            "secretKeyRef"
        } else {
            "configMapKeyRef"
        };
        match data.as_ref().map(|d| d.get(&r.key)) {
            Some(Some(v)) => Some(EnvValue::Fixed(String::from_utf8_lossy(v).into_owned())),
            _ if r.optional == Some(true) => None,
            None => {
                self.err(
                    format!("{field}.{sub}.name"),
                    format!(
                        "Not found: {:?}: no {kind} of that name in this file",
                        r.name
                    ),
                );
                None
            }
            Some(None) => {
                self.err(
                    format!("{field}.{sub}.key"),
                    format!(
                        "Not found: {:?}: {kind} {:?} has no such key",
                        r.key, r.name
                    ),
                );
                None
            }
        }
    }
}

struct PodFields<'a> {
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
}

fn is_relative_clean(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

#[cfg(test)]
mod tests {
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
