//! Volumes: emptyDir, hostPath, configMap, secret (and their files);
//! downwardAPI and projected are in `downward.rs`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::*;

impl Validator<'_> {
    pub(super) fn volume_source(
        &mut self,
        vol: &manifest::Volume,
        field: &str,
        pod: &PodFields<'_>,
    ) -> Option<VolumeSource> {
        let cluster: [(&str, bool); 5] = [
            (
                "persistentVolumeClaim",
                vol.persistent_volume_claim.is_some(),
            ),
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
            ("downwardAPI", vol.downward_api.is_some()),
            ("projected", vol.projected.is_some()),
        ] {
            if set {
                kinds.push(k);
            }
        }
        match kinds.len() {
            0 => {
                self.err(field, "Required value: must specify a volume type (emptyDir, hostPath, configMap, secret, downwardAPI or projected)");
                return None;
            }
            1 => {}
            _ => {
                self.push(field::forbidden(
                    format!("{field}.{}", kinds[1]),
                    "may not specify more than 1 volume type",
                ));
                return None;
            }
        }
        if let Some((k, _)) = cluster.iter().find(|(_, set)| *set) {
            self.push(field::forbidden(format!("{field}.{k}"), "this volume type needs a cluster; wasipod provides emptyDir, hostPath, configMap, secret, downwardAPI and projected"));
            return None;
        }
        if let Some(e) = &vol.empty_dir {
            let memory = match e.medium.as_deref() {
                None | Some("") => false,
                Some("Memory") => true,
                Some(m) => {
                    self.err(
                        format!("{field}.emptyDir.medium"),
                        format!("Unsupported value: {m:?}: supported values: \"\", \"Memory\""),
                    );
                    false
                }
            };
            let size_limit = e.size_limit.as_ref().and_then(|limit| {
                let text = value_text(limit);
                match parse_memory(&text) {
                    Ok(b) => Some((b, text)),
                    Err(e) => {
                        self.err(
                            format!("{field}.emptyDir.sizeLimit"),
                            format!("Invalid value: {e}"),
                        );
                        None
                    }
                }
            });
            return Some(VolumeSource::EmptyDir { memory, size_limit });
        }
        if let Some(h) = &vol.host_path {
            let f = format!("{field}.hostPath");
            if h.path.is_empty() {
                self.push(field::required(format!("{f}.path"), ""));
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
                self.push(field::required(format!("{f}.name"), ""));
                return None;
            }
            let data = self.config_map_bytes(&cm.name);
            return self.key_files(
                &f,
                "ConfigMap",
                &cm.name,
                data,
                &cm.items,
                cm.optional == Some(true),
            );
        }
        if let Some(d) = &vol.downward_api {
            let files = self.downward_files(d, &format!("{field}.downwardAPI"), pod);
            return Some(VolumeSource::Files { files });
        }
        if let Some(p) = &vol.projected {
            return self.projected(p, &format!("{field}.projected"), pod);
        }
        if let Some(s) = &vol.secret {
            let f = format!("{field}.secret");
            if s.secret_name.is_empty() {
                self.push(field::required(format!("{f}.secretName"), ""));
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

    pub(super) fn secret_data(&mut self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
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

    /// A ConfigMap's `data` and `binaryData` (decoded) as bytes.
    pub(super) fn config_map_bytes(&mut self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let c = self.file.config_maps.get(name)?;
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
                    format!("ConfigMap {name:?} binaryData[{k:?}]"),
                    "Invalid value: not valid base64",
                )),
            }
        }
        Some(m)
    }

    pub(super) fn config_map_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.file.config_maps.get(name).map(|c| c.data.clone())
    }

    pub(super) fn key_files(
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
}
