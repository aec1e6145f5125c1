//! What a task is made from: the OCI bundle containerd prepares (its
//! `config.json` and `rootfs/`), read into wasipod's sandbox vocabulary.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use wasipod::net::{HostNetns, OutboundRule};

/// containerd's CRI plugin: which sandbox a container belongs to.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// containerd's CRI plugin: `sandbox` or `container`.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// The files of `/etc` the CRI bind-mounts, which wasipod's own `/etc`
/// already serves (with the pod's hostname and names).
const SERVED_ETC: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];
/// Where the kubelet mounts the file it reads the termination message from.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// A bind mount of a host folder, as a guest can be given one.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// The host folder.
    pub source: PathBuf,
    /// The guest path.
    pub destination: String,
    /// Mounted `ro`.
    pub read_only: bool,
    /// Its index in the spec's mounts (for messages).
    pub index: usize,
}

/// A task's role, from the CRI's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A CRI pod sandbox (the "pause" container): the pod itself.
    Sandbox,
    /// A container of the CRI sandbox with this id.
    InSandbox(String),
    /// A container started outside the CRI (`ctr run`): a pod of its own.
    Standalone,
}

/// A bundle's `config.json`, read.
pub struct Bundle {
    /// The bundle folder.
    pub dir: PathBuf,
    /// The OCI runtime spec.
    pub spec: Spec,
}

impl Bundle {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let file = dir.join("config.json");
        let spec = Spec::load(&file).with_context(|| format!("reading {}", file.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            spec,
        })
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// Its role in a pod.
    pub fn role(&self) -> Role {
        match (self.annotation(CONTAINER_TYPE), self.annotation(SANDBOX_ID)) {
            (Some("sandbox"), _) => Role::Sandbox,
            (Some("container"), Some(id)) => Role::InSandbox(id.to_string()),
            _ => Role::Standalone,
        }
    }

    /// The pod's namespace, name and uid as wasipod's sandbox needs them (a
    /// DNS label, a DNS subdomain, a UUID): the CRI's annotations where they
    /// qualify, else the containerd namespace and the task id (and a new
    /// uid).
    pub fn pod_identity(&self, task_id: &str, namespace: &str) -> (String, String, Option<String>) {
        let ns = self
            .annotation(SANDBOX_NAMESPACE)
            .filter(|n| wasipod::spec::is_dns_label(n))
            .or(Some(namespace).filter(|n| wasipod::spec::is_dns_label(n)))
            .unwrap_or("default")
            .to_string();
        let name = self
            .annotation(SANDBOX_NAME)
            .filter(|n| wasipod::spec::is_dns_subdomain(n))
            .map(str::to_string)
            .unwrap_or_else(|| dns_name(task_id));
        let uid = self
            .annotation(SANDBOX_UID)
            .filter(|u| wasipod::spec::is_uuid(u))
            .map(str::to_string);
        (ns, name, uid)
    }

    /// The container's name for messages: the CRI's, or the task id.
    pub fn container_name(&self, task_id: &str) -> String {
        self.annotation(CONTAINER_NAME)
            .unwrap_or(task_id)
            .to_string()
    }

    /// The hostname the spec gives, if any.
    pub fn hostname(&self) -> Option<String> {
        self.spec.hostname().clone().filter(|h| !h.is_empty())
    }

    /// Which host network namespace the pod lives in: the spec's network
    /// namespace path; none (the host's own) when the spec has no network
    /// namespace (`hostNetwork`, `ctr run --net-host`); and no namespace to
    /// attach to when it asks for a new, empty one (a pod with nothing but
    /// its loopback).
    pub fn host_network(&self) -> Option<HostNetns> {
        let namespaces = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        match namespaces
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
        {
            None => Some(HostNetns::Current),
            Some(n) => n.path().clone().map(HostNetns::Path),
        }
    }

    /// What a pod attached to a host namespace may reach from it: anything,
    /// as a Kubernetes pod may (NetworkPolicy is the network plugin's).
    pub fn outbound(host: &Option<HostNetns>) -> Vec<OutboundRule> {
        match host {
            Some(_) => OutboundRule::parse_list("0.0.0.0/0").unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The process's argv.
    pub fn args(&self) -> Vec<String> {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default()
    }

    /// The process's environment, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The working directory (`None` for `/`).
    pub fn cwd(&self) -> Option<String> {
        self.spec
            .process()
            .as_ref()
            .map(|p| p.cwd().to_string_lossy().into_owned())
            .filter(|c| c != "/" && !c.is_empty())
    }

    /// Whether the spec asks for a terminal (which a wasm guest cannot have).
    pub fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }

    /// `linux.resources`: the memory limit in bytes, the CPU limit and
    /// request in millicores.
    pub fn resources(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let Some(r) = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
        else {
            return (None, None, None);
        };
        let memory = r
            .memory()
            .as_ref()
            .and_then(|m| m.limit())
            .and_then(|l| u64::try_from(l).ok())
            .filter(|l| *l > 0);
        let cpu = r.cpu().as_ref();
        let limit = cpu.and_then(|c| match (c.quota(), c.period()) {
            (Some(q), Some(p)) if q > 0 && p > 0 => Some((q as u64).saturating_mul(1000) / p),
            _ => None,
        });
        // The kubelet writes requests.cpu as shares (1024 per core; 2 for
        // none).
        let request = cpu
            .and_then(|c| c.shares())
            .filter(|s| *s > 2)
            .map(|s| s.saturating_mul(1000) / 1024);
        (memory, limit, request)
    }

    /// Whether `/` is read-only.
    pub fn root_read_only(&self) -> bool {
        self.spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
    }

    /// The bind mounts of folders (what a guest can be given); and the
    /// host file bind-mounted at [`TERMINATION_LOG`]. Other mounts have no
    /// meaning for a wasm guest (`/proc`, `/sys`, `/dev` file systems, the
    /// `/etc` files wasipod serves itself) and are left out.
    pub fn bind_mounts(&self) -> (Vec<BindMount>, Option<PathBuf>) {
        let mut folders = Vec::new();
        let mut termination = None;
        for (i, m) in self.spec.mounts().iter().flatten().enumerate() {
            let options = m.options().clone().unwrap_or_default();
            let bind = m.typ().as_deref() == Some("bind")
                || options.iter().any(|o| o == "bind" || o == "rbind");
            let (Some(source), true) = (m.source(), bind) else {
                continue;
            };
            let dest = m.destination().to_string_lossy().into_owned();
            if SERVED_ETC.contains(&dest.as_str()) {
                continue;
            }
            if dest == TERMINATION_LOG {
                termination = Some(source.clone());
                continue;
            }
            if dest == "/dev"
                || dest.starts_with("/dev/")
                || dest.starts_with("/proc")
                || dest.starts_with("/sys")
            {
                continue;
            }
            if source.is_dir() {
                folders.push(BindMount {
                    source: source.clone(),
                    destination: dest,
                    read_only: options.iter().any(|o| o == "ro"),
                    index: i,
                });
            }
        }
        (folders, termination)
    }

    /// The bundle's `rootfs` folder.
    pub fn rootfs(&self) -> PathBuf {
        let root = self
            .spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| PathBuf::from("rootfs"));
        if root.is_absolute() {
            root
        } else {
            self.dir.join(root)
        }
    }

    /// The module to run: `args[0]` inside the root file system (relative
    /// to the working directory when not absolute), opened through cap-std
    /// so that no link in the image leads out of it.
    pub fn module_path(&self) -> anyhow::Result<PathBuf> {
        let args = self.args();
        let Some(program) = args.first() else {
            bail!("process.args is empty: the image names no entrypoint (the .wasm file to run)");
        };
        let rootfs = self.rootfs();
        let rel = if program.starts_with('/') {
            program.trim_start_matches('/').to_string()
        } else {
            let cwd = self.cwd().unwrap_or_default();
            format!("{}/{program}", cwd.trim_start_matches('/'))
                .trim_start_matches('/')
                .to_string()
        };
        let dir = cap_std::fs::Dir::open_ambient_dir(&rootfs, cap_std::ambient_authority())
            .with_context(|| format!("opening the root file system {}", rootfs.display()))?;
        let meta = dir.metadata(&rel).with_context(|| {
            format!("process.args[0] {program:?}: no such file in the image's root file system")
        })?;
        if !meta.is_file() {
            bail!(
                "process.args[0] {program:?}: not a file (the entrypoint must be a .wasm module)"
            );
        }
        Ok(rootfs.join(rel))
    }
}

/// A DNS subdomain made from a containerd id (lower case, other characters
/// as `-`).
fn dns_name(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    s = s
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if s.is_empty() { "task".into() } else { s }
}

/// Where the given mounts put the working directory: the mount holding it
/// (index into `mounts`, by longest guest path) and the rest of the path.
pub fn working_dir_mount(mounts: &[(usize, String)], cwd: &str) -> Option<(usize, String)> {
    mounts
        .iter()
        .filter(|(_, path)| {
            path == "/"
                || cwd == path
                || cwd
                    .strip_prefix(path.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|(_, path)| path.len())
        .map(|(i, path)| {
            let rest = cwd[path.len().min(cwd.len())..].trim_start_matches('/');
            (*i, rest.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(json: serde_json::Value) -> Bundle {
        Bundle {
            dir: PathBuf::from("/bundle"),
            spec: serde_json::from_value(json).expect("an OCI spec"),
        }
    }

    #[test]
    fn roles_follow_the_cri_annotations() {
        let b = |a: serde_json::Value| {
            bundle(serde_json::json!({"ociVersion": "1.0.2", "annotations": a}))
        };
        assert_eq!(
            b(serde_json::json!({CONTAINER_TYPE: "sandbox", SANDBOX_ID: "s1"})).role(),
            Role::Sandbox
        );
        assert_eq!(
            b(serde_json::json!({CONTAINER_TYPE: "container", SANDBOX_ID: "s1"})).role(),
            Role::InSandbox("s1".into())
        );
        assert_eq!(b(serde_json::json!({})).role(), Role::Standalone);
        // Names that do not fit a pod folder are replaced, never used.
        let odd = b(
            serde_json::json!({SANDBOX_NAME: "../x", SANDBOX_NAMESPACE: "Bad_NS", SANDBOX_UID: "1"}),
        );
        let (ns, name, uid) = odd.pod_identity("My_Task", "k8s.io");
        assert_eq!(
            (ns.as_str(), name.as_str(), uid),
            ("default", "my-task", None)
        );
    }

    #[test]
    fn limits_and_namespaces_are_read_as_the_kubelet_writes_them() {
        let b = bundle(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {
                "resources": {
                    "memory": {"limit": 67108864},
                    "cpu": {"quota": 50000, "period": 100000, "shares": 256}
                },
                "namespaces": [{"type": "network", "path": "/var/run/netns/cni-1"}]
            }
        }));
        assert_eq!(b.resources(), (Some(64 << 20), Some(500), Some(250)));
        assert_eq!(
            b.host_network(),
            Some(HostNetns::Path("/var/run/netns/cni-1".into()))
        );
        let fresh = bundle(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"namespaces": [{"type": "network"}]}
        }));
        assert_eq!(fresh.host_network(), None);
        let host = bundle(serde_json::json!({"ociVersion": "1.0.2", "linux": {"namespaces": []}}));
        assert_eq!(host.host_network(), Some(HostNetns::Current));
    }

    #[test]
    fn only_folder_bind_mounts_reach_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let log = dir.path().join("termination");
        std::fs::write(&log, b"").unwrap();
        let b = bundle(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": log, "options": ["rbind"]},
                {"destination": "/dev/termination-log", "type": "bind", "source": log, "options": ["rbind"]},
                {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]},
                {"destination": "/file", "type": "bind", "source": log, "options": ["rbind"]}
            ]
        }));
        let (folders, termination) = b.bind_mounts();
        assert_eq!(folders.len(), 1);
        assert_eq!(
            (
                folders[0].destination.as_str(),
                folders[0].read_only,
                folders[0].index
            ),
            ("/data", true, 3)
        );
        assert_eq!(termination, Some(log));
    }

    #[test]
    fn the_working_directory_is_found_in_the_deepest_mount() {
        let mounts = vec![
            (0, "/".to_string()),
            (1, "/data".to_string()),
            (2, "/data/deep".to_string()),
        ];
        assert_eq!(working_dir_mount(&mounts, "/app"), Some((0, "app".into())));
        assert_eq!(
            working_dir_mount(&mounts, "/data"),
            Some((1, String::new()))
        );
        assert_eq!(
            working_dir_mount(&mounts, "/data/deep/x"),
            Some((2, "x".into()))
        );
        assert_eq!(
            working_dir_mount(&mounts, "/database"),
            Some((0, "database".into()))
        );
    }
}
