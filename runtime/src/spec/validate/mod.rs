//! The validator: wire types in, a [`PodSpec`] or every problem out. One
//! file per concept; each step takes the field path it checks.

mod container;
mod downward;
mod env_source;
mod host;
mod image;
mod ports;
mod probe;
mod resources;
mod security;
mod volume;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path};
use std::time::Duration;

use serde_yaml_ng::Value;

use super::field;
use super::*;
use crate::api::manifest::{self, ManifestFile};
use crate::api::quantity::parse_memory;
use crate::error::FieldError;
use crate::spec::network::{OUTBOUND_ANNOTATION, OutboundRule, PortMapping};

pub(super) struct Validator<'a> {
    pub(super) errors: Vec<FieldError>,
    pub(super) warnings: Vec<String>,
    pub(super) publish: Vec<PortMapping>,
    pub(super) file: &'a ManifestFile,
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

impl Validator<'_> {
    /// Records a problem with a message of its own.
    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    /// Records a problem built with a [`field`] constructor.
    pub(super) fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub(super) fn ignored(&mut self, path: &str, present: bool, why: &str) {
        if present {
            self.warnings.push(format!("{path}: ignored ({why})"));
        }
    }

    pub(in crate::spec) fn pod(&mut self) -> Option<PodSpec> {
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
            self.push(field::invalid("metadata.name", &name, SUBDOMAIN_MSG));
        }
        let namespace = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        if !is_dns_label(&namespace) {
            self.push(field::invalid("metadata.namespace", &namespace, LABEL_MSG));
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
                    self.push(field::invalid("spec.hostname", &h, LABEL_MSG));
                }
                h.clone()
            }
            None => truncate_hostname(&name),
        };

        let resources = downward::container_resources(file);
        let ctx = PodFields {
            name: &name,
            namespace: &namespace,
            uid: &uid,
            labels: &meta.labels,
            annotations: &meta.annotations,
            resources: &resources,
        };

        // Volumes.
        let mut volumes = Vec::new();
        let mut volume_index = HashMap::new();
        for (i, vol) in spec.volumes.iter().enumerate() {
            let field = format!("spec.volumes[{i}]");
            if vol.name.is_empty() {
                self.push(field::required(format!("{field}.name"), ""));
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
            if let Some(source) = self.volume_source(vol, &field, &ctx) {
                volumes.push(VolumeSpec {
                    name: vol.name.clone(),
                    source,
                    field,
                });
            } else {
                volumes.push(VolumeSpec {
                    name: vol.name.clone(),
                    source: VolumeSource::EmptyDir {
                        memory: false,
                        size_limit: None,
                    },
                    field,
                });
            }
        }

        // Containers.
        if spec.containers.is_empty() {
            self.push(field::required("spec.containers", ""));
        }
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

        let qos_class = qos_class(
            init_containers
                .iter()
                .chain(&containers)
                .map(|c: &ContainerSpec| &c.resources),
        );
        let mut wire = pod.clone();
        wire.api_version = "v1".into();
        wire.kind = "Pod".into();
        wire.metadata.name = Some(name.clone());
        wire.metadata.namespace = Some(namespace.clone());
        wire.metadata.uid = Some(uid.clone());
        wire.spec.restart_policy = Some(restart_policy.as_str().into());
        wire.spec.termination_grace_period_seconds = Some(grace.as_secs() as i64);
        for c in wire
            .spec
            .init_containers
            .iter_mut()
            .chain(&mut wire.spec.containers)
        {
            c.termination_message_path
                .get_or_insert_with(|| DEFAULT_TERMINATION_MESSAGE_PATH.into());
            c.termination_message_policy
                .get_or_insert_with(|| "File".into());
            // The API server defaults each missing request from its limit.
            if let Some(r) = &mut c.resources {
                for (k, v) in &r.limits {
                    r.requests.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }

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
            qos_class,
            warnings: std::mem::take(&mut self.warnings),
            publish: std::mem::take(&mut self.publish),
            outbound,
            source: file.source.clone(),
            wire,
        })
    }
}

struct PodFields<'a> {
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    /// Each container's resources, by name (for `resourceFieldRef`).
    resources: &'a HashMap<String, Resources>,
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

pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}
