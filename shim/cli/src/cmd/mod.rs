//! One module per verb, and what several verbs print the same way.

pub(crate) mod bench;
pub(crate) mod get;
pub(crate) mod logs;
pub(crate) mod rm;
pub(crate) mod run;
pub(crate) mod stop;
pub(crate) mod validate;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use wasipod::store::{self, Record};
use wasipod::{PodObject, PodSpec};

use crate::Format;
use crate::daemon::{ApiError, Client};

/// Where `get`, `logs`, `stop` and `rm` find pods: the node daemon's
/// through its API when one answers, and the records on disk — those of
/// `wasipod run`, and the daemon's own while it is not running.
pub(crate) struct Pods {
    /// The CLI's state folder (records of `wasipod run`).
    pub state_dir: PathBuf,
    /// The daemon, when one answers.
    pub daemon: Option<Client>,
    /// The daemon's state folder, read while it is not running.
    daemon_state: PathBuf,
}

impl Pods {
    /// Looks for the daemon the kubeconfig at `kubeconfig` names (a
    /// kubeconfig the daemon wrote, beside its state folder).
    pub fn open(state_dir: &Path, kubeconfig: &Path) -> Result<Self> {
        let daemon = Client::find(kubeconfig)?;
        let daemon_state = kubeconfig
            .parent()
            .map(|d| d.join("state"))
            .unwrap_or_default();
        Ok(Self {
            state_dir: state_dir.to_path_buf(),
            daemon,
            daemon_state,
        })
    }

    /// The records on disk the CLI reads: its own, then the daemon's while
    /// no daemon answers (their pods show `Unknown` unless finished).
    pub fn records(&self) -> Vec<Record> {
        let mut all = store::list(&self.state_dir);
        if self.daemon.is_none() && self.daemon_state != self.state_dir {
            all.extend(store::list(&self.daemon_state));
        }
        all
    }

    /// The newest record of a pod.
    pub fn record(&self, namespace: &str, name: &str) -> Result<Record> {
        self.records()
            .into_iter()
            .rev()
            .find(|r| r.namespace() == namespace && r.name() == name)
            .ok_or_else(|| {
                wasipod::RuntimeError::NotFound {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
                .into()
            })
    }

    /// The daemon's pod, if a daemon answers and has it.
    pub fn daemon_pod(&self, namespace: &str, name: &str) -> Result<Option<(&Client, PodObject)>> {
        let Some(daemon) = &self.daemon else {
            return Ok(None);
        };
        match daemon.pod(namespace, name) {
            Ok(pod) => Ok(Some((daemon, pod))),
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(ApiError::is_not_found) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub(crate) fn load(manifest: &Path) -> Result<PodSpec> {
    let spec = PodSpec::from_file(manifest)?;
    for w in &spec.warnings {
        eprintln!("warning: {w}");
    }
    Ok(spec)
}

pub(crate) fn print_summary(object: &PodObject) {
    let s = &object.status;
    eprintln!(
        "\npod {}/{}: {}{}",
        object.metadata.namespace.as_deref().unwrap_or("default"),
        object.metadata.name.as_deref().unwrap_or(""),
        s.phase,
        s.reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    eprintln!(
        "  {:<20} {:<11} {:<18} {:>5} {:>8}",
        "CONTAINER", "STATE", "REASON", "EXIT", "RESTARTS"
    );
    for (c, init) in s
        .init_container_statuses
        .iter()
        .map(|c| (c, true))
        .chain(s.container_statuses.iter().map(|c| (c, false)))
    {
        let (state, reason, exit) = match &c.state {
            wasipod::ContainerState::Waiting(w) => ("Waiting", w.reason.clone(), String::new()),
            wasipod::ContainerState::Running(_) => ("Running", String::new(), String::new()),
            wasipod::ContainerState::Terminated(t) => {
                ("Terminated", t.reason.clone(), t.exit_code.to_string())
            }
        };
        let name = if init {
            format!("{} (init)", c.name)
        } else {
            c.name.clone()
        };
        eprintln!(
            "  {name:<20} {state:<11} {reason:<18} {exit:>5} {:>8}",
            c.restart_count
        );
        // The termination message, as `kubectl describe` shows it.
        if let wasipod::ContainerState::Terminated(t) = &c.state
            && let Some(m) = t.message.as_deref().filter(|m| !m.trim().is_empty())
        {
            eprintln!(
                "    message: {}",
                m.trim_end().replace('\n', "\n             ")
            );
        }
    }
}

pub(crate) fn render(object: &PodObject, format: Format) -> Result<String> {
    Ok(match format {
        Format::Yaml => serde_yaml_ng::to_string(object)?,
        Format::Json => serde_json::to_string_pretty(object)?,
    })
}
