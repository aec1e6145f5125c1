//! The downward API: pod fields and container resources as environment
//! values and as files (`downwardAPI` volumes, `projected` volumes that
//! combine them with ConfigMap and Secret keys), formatted as the kubelet
//! formats them.

use std::collections::BTreeMap;

use super::*;
use crate::api::quantity::parse_quantity;
use crate::spec::resources::{ResourceList, Resources};

const FIELD_PATHS: &str = "\"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"metadata.labels\", \"metadata.annotations\", \"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\"";

impl Validator<'_> {
    /// The value of a pod field: the names, the uid, one label or
    /// annotation, or (`maps`: in a volume) all of them, one `key="value"`
    /// per line in key order. `None` for a path it does not know.
    pub(super) fn pod_field(path: &str, pod: &PodFields<'_>, maps: bool) -> Option<String> {
        let keyed = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix("']"))
                .map(str::to_string)
        };
        match path {
            "metadata.name" => Some(pod.name.to_string()),
            "metadata.namespace" => Some(pod.namespace.to_string()),
            "metadata.uid" => Some(pod.uid.to_string()),
            "metadata.labels" if maps => Some(format_map(pod.labels)),
            "metadata.annotations" if maps => Some(format_map(pod.annotations)),
            _ => {
                if let Some(k) = keyed("metadata.labels['") {
                    Some(pod.labels.get(&k).cloned().unwrap_or_default())
                } else {
                    keyed("metadata.annotations['")
                        .map(|k| pod.annotations.get(&k).cloned().unwrap_or_default())
                }
            }
        }
    }

    /// A `resourceFieldRef`'s value: the container's request or limit (a
    /// limit it does not set is the node's allocatable amount, a request it
    /// does not set is 0), divided by `divisor` and rounded up, as the
    /// kubelet writes it.
    pub(super) fn resource_field(
        &mut self,
        r: &manifest::ResourceFieldRef,
        field: &str,
        own: Option<&str>,
        pod: &PodFields<'_>,
    ) -> Option<String> {
        let name = match (r.container_name.as_deref().filter(|n| !n.is_empty()), own) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                self.push(field::required(format!("{field}.containerName"), ""));
                return None;
            }
        };
        let Some(resources) = pod.resources.get(name) else {
            self.err(
                format!("{field}.containerName"),
                format!("Not found: {name:?}: no container of that name in this pod"),
            );
            return None;
        };
        let (list, resource) = match r.resource.split_once('.') {
            Some(("limits", res)) => (resources.limits.or(node_allocatable()), res),
            Some(("requests", res)) => (resources.requests, res),
            _ => (ResourceList::default(), ""),
        };
        let divisor_text = r
            .divisor
            .as_ref()
            .map(value_text)
            .unwrap_or_else(|| "1".into());
        let (value, divisor) = match resource {
            "cpu" => (
                list.cpu_millis.unwrap_or(0),
                cpu_divisor(&divisor_text).map(|d| (d * 1000.0).round() as u64),
            ),
            "memory" | "ephemeral-storage" => (
                if resource == "memory" {
                    list.memory.unwrap_or(0)
                } else {
                    list.ephemeral_storage.unwrap_or(0)
                },
                memory_divisor(&divisor_text),
            ),
            _ => {
                self.err(
                    format!("{field}.resource"),
                    format!("Unsupported value: {:?}: supported values: \"limits.cpu\", \"limits.ephemeral-storage\", \"limits.memory\", \"requests.cpu\", \"requests.ephemeral-storage\", \"requests.memory\"", r.resource),
                );
                return None;
            }
        };
        let Some(divisor) = divisor.filter(|d| *d > 0) else {
            let supported = if resource == "cpu" {
                "\"1m\", \"1\""
            } else {
                "\"1\", \"1k\", \"1M\", \"1G\", \"1T\", \"1P\", \"1E\", \"1Ki\", \"1Mi\", \"1Gi\", \"1Ti\", \"1Pi\", \"1Ei\""
            };
            self.err(
                format!("{field}.divisor"),
                format!("Unsupported value: {divisor_text:?}: supported values: {supported}"),
            );
            return None;
        };
        Some(value.div_ceil(divisor).to_string())
    }

    /// The files of a `downwardAPI` volume (or projection).
    pub(super) fn downward_files(
        &mut self,
        d: &manifest::DownwardApiVolume,
        field: &str,
        pod: &PodFields<'_>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for (i, item) in d.items.iter().enumerate() {
            let f = format!("{field}.items[{i}]");
            if !is_relative_clean(&item.path) {
                self.push(field::invalid(
                    format!("{f}.path"),
                    &item.path,
                    "must be a relative path without '..'",
                ));
                continue;
            }
            let value = match (&item.field_ref, &item.resource_field_ref) {
                (Some(fr), None) => {
                    let v = Self::pod_field(&fr.field_path, pod, true);
                    if v.is_none() {
                        self.err(
                            format!("{f}.fieldRef.fieldPath"),
                            format!(
                                "Unsupported value: {:?}: supported values: {FIELD_PATHS}",
                                fr.field_path
                            ),
                        );
                    }
                    v
                }
                (None, Some(r)) => {
                    self.resource_field(r, &format!("{f}.resourceFieldRef"), None, pod)
                }
                _ => {
                    self.err(
                        f,
                        "Invalid value: must specify exactly one of fieldRef and resourceFieldRef",
                    );
                    None
                }
            };
            if let Some(v) = value {
                files.push((item.path.clone(), v.into_bytes()));
            }
        }
        files
    }

    /// A `projected` volume: its sources' files in one folder (a later
    /// source's file replaces an earlier one at the same path, as the
    /// kubelet writes them in order). Sources that need a cluster are
    /// refused.
    pub(super) fn projected(
        &mut self,
        p: &manifest::ProjectedVolume,
        field: &str,
        pod: &PodFields<'_>,
    ) -> Option<VolumeSource> {
        let mut all: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (i, src) in p.sources.iter().enumerate() {
            let f = format!("{field}.sources[{i}]");
            let cluster = [
                (
                    "serviceAccountToken",
                    src.service_account_token.is_some(),
                    "a service account token is issued by an API server",
                ),
                (
                    "clusterTrustBundle",
                    src.cluster_trust_bundle.is_some(),
                    "trust bundles are objects of a cluster",
                ),
                (
                    "podCertificate",
                    src.pod_certificate.is_some(),
                    "pod certificates are issued by a cluster",
                ),
            ];
            let local = [
                src.config_map.is_some(),
                src.secret.is_some(),
                src.downward_api.is_some(),
            ];
            let count =
                cluster.iter().filter(|c| c.1).count() + local.iter().filter(|b| **b).count();
            if count != 1 {
                self.err(
                    f,
                    "Invalid value: must specify exactly one of configMap, secret, downwardAPI",
                );
                continue;
            }
            if let Some((k, _, why)) = cluster.iter().find(|c| c.1) {
                self.push(field::forbidden(format!("{f}.{k}"), why));
                continue;
            }
            let files = if let Some(cm) = &src.config_map {
                let data = self.config_map_bytes(&cm.name);
                self.key_files(
                    &format!("{f}.configMap"),
                    "ConfigMap",
                    &cm.name,
                    data,
                    &cm.items,
                    cm.optional == Some(true),
                )
            } else if let Some(s) = &src.secret {
                let data = self.secret_data(&s.name);
                self.key_files(
                    &format!("{f}.secret"),
                    "Secret",
                    &s.name,
                    data,
                    &s.items,
                    s.optional == Some(true),
                )
            } else {
                src.downward_api.as_ref().map(|d| VolumeSource::Files {
                    files: self.downward_files(d, &format!("{f}.downwardAPI"), pod),
                })
            };
            if let Some(VolumeSource::Files { files }) = files {
                all.extend(files);
            }
        }
        Some(VolumeSource::Files {
            files: all.into_iter().collect(),
        })
    }
}

/// The resources of each container of a pod, read without reporting
/// anything (the containers' own validation reports their problems).
pub(super) fn container_resources(file: &ManifestFile) -> HashMap<String, Resources> {
    let mut quiet = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
        publish: Vec::new(),
        file,
    };
    let spec = &file.pod.spec;
    spec.init_containers
        .iter()
        .chain(&spec.containers)
        .map(|c| {
            let r = c
                .resources
                .as_ref()
                .map(|r| quiet.resources(r, ""))
                .unwrap_or_default();
            (c.name.clone(), r)
        })
        .collect()
}

/// What the node can give a container: its CPUs, its memory and the space
/// of its root file system (what a limit the container does not set
/// reads as).
fn node_allocatable() -> ResourceList {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    // SAFETY: `sysinfo` and `statvfs` only write into the structs given.
    let memory = unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        (libc::sysinfo(&mut info) == 0).then(|| info.totalram as u64 * u64::from(info.mem_unit))
    };
    let disk = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c"/".as_ptr(), &mut st) == 0)
            .then(|| st.f_blocks as u64 * st.f_frsize as u64)
    };
    ResourceList {
        cpu_millis: Some(cpus * 1000),
        memory,
        ephemeral_storage: disk,
    }
}

fn cpu_divisor(text: &str) -> Option<f64> {
    matches!(text, "1m" | "1").then(|| parse_quantity(text).ok())?
}

fn memory_divisor(text: &str) -> Option<u64> {
    const UNITS: [&str; 13] = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    UNITS
        .contains(&text)
        .then(|| parse_quantity(text).ok().map(|v| v as u64))?
}

/// Labels or annotations as the kubelet writes them in a downward API
/// file: `key="value"` lines in key order, values quoted as Go's `%q`
/// does, no newline after the last.
fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.escape_debug()))
        .collect::<Vec<_>>()
        .join("\n")
}
