//! Environment values from pod fields, container resources, ConfigMaps
//! and Secrets.

use std::collections::BTreeMap;

use super::*;

impl Validator<'_> {
    pub(super) fn env_source(
        &mut self,
        src: &manifest::EnvVarSource,
        field: &str,
        container: &str,
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
                "Invalid value: must have exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef",
            );
            return None;
        }
        if let Some(r) = &src.resource_field_ref {
            return self
                .resource_field(
                    r,
                    &format!("{field}.resourceFieldRef"),
                    Some(container),
                    pod,
                )
                .map(EnvValue::Fixed);
        }
        if let Some(fr) = &src.field_ref {
            let path = fr.field_path.as_str();
            if matches!(path, "status.podIP" | "status.podIPs") {
                return Some(EnvValue::PodIp);
            }
            let value = Self::pod_field(path, pod, false);
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
