//! The daemon's objects on disk, so that they survive a restart: the
//! namespaces created, ConfigMaps and Secrets, one JSON file each (pods are
//! the library's records, in the runtime's state folder).
//!
//! ```text
//! <dir>/namespaces/<name>.json
//! <dir>/configmaps/<namespace>_<name>.json
//! <dir>/secrets/<namespace>_<name>.json     (0600, like every file here)
//! ```
//!
//! Names are DNS labels and subdomains (checked before anything is
//! stored), so a file name never leads out of its folder. A file is
//! written under a temporary name and renamed, so a crash leaves the old
//! object or the new one, never half of one.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// The folder of stored objects.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: PathBuf,
}

impl Disk {
    /// Opens (making it, 0700) the folder `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        for resource in ["namespaces", "configmaps", "secrets"] {
            let sub = dir.join(resource);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sub)
                .with_context(|| format!("creating {}", sub.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, resource: &str, namespace: &str, name: &str) -> Option<PathBuf> {
        let safe = |s: &str| !s.contains(['/', '_']) && !s.starts_with('.');
        if !safe(namespace) || !safe(name) || name.is_empty() {
            return None;
        }
        let file = if namespace.is_empty() {
            format!("{name}.json")
        } else {
            format!("{namespace}_{name}.json")
        };
        Some(self.dir.join(resource).join(file))
    }

    /// Stores an object (a failure is reported, and the object lives on in
    /// memory).
    pub fn save(&self, resource: &str, namespace: &str, name: &str, value: &Value) {
        let Some(path) = self.path(resource, namespace, name) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(value.to_string().as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            eprintln!("wasipodd: cannot store {}: {e}", path.display());
        }
    }

    /// Forgets an object.
    pub fn remove(&self, resource: &str, namespace: &str, name: &str) {
        if let Some(path) = self.path(resource, namespace, name)
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("wasipodd: cannot remove {}: {e}", path.display());
        }
    }

    /// Every stored object of a resource (unreadable files are reported
    /// and skipped).
    pub fn load(&self, resource: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join(resource)) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(v) => out.push(v),
                Err(e) => eprintln!("wasipodd: skipping {}: {e}", path.display()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn objects_round_trip_privately_and_names_stay_in_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        let secret = serde_json::json!({"kind": "Secret", "data": {"k": "dg=="}});
        disk.save("secrets", "team", "db", &secret);
        disk.save(
            "namespaces",
            "",
            "team",
            &serde_json::json!({"name": "team"}),
        );
        disk.save("secrets", "team", "../escape", &secret);
        assert_eq!(disk.load("secrets"), vec![secret]);
        let file = dir.path().join("secrets/team_db.json");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(disk.load("namespaces").len(), 1);
        disk.remove("secrets", "team", "db");
        assert!(disk.load("secrets").is_empty());
    }
}
