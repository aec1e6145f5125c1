//! `wasipod rm`: remove finished pods — their records (logs, status) on
//! disk, or, for the daemon's pods, the pods themselves through its API.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wasipod::PodObject;

use super::Pods;

pub(crate) fn rm(pods: &Pods, namespace: &str, pod: Option<&str>, all: bool) -> Result<ExitCode> {
    let finished = |o: &PodObject| o.status.phase.is_terminal();
    let name_of = |o: &PodObject| o.metadata.name.clone().unwrap_or_default();
    let ns_of = |o: &PodObject| o.metadata.namespace.clone().unwrap_or_default();
    let (served, records) = match (pod, all) {
        (Some(name), false) => match pods.daemon_pod(namespace, name)? {
            Some((_, object)) => (vec![object], Vec::new()),
            None => (Vec::new(), vec![pods.record(namespace, name)?]),
        },
        (None, true) => {
            let served = match &pods.daemon {
                Some(d) => d.pods()?.into_iter().filter(finished).collect(),
                None => Vec::new(),
            };
            let records = pods
                .records()
                .into_iter()
                .filter(|r| !r.is_running())
                .collect();
            (served, records)
        }
        _ => bail!("give a pod name or --all"),
    };
    for o in served {
        if !finished(&o) {
            bail!(
                "pod \"{}\" is running; `wasipod stop` it first",
                name_of(&o)
            );
        }
        if let Some(daemon) = &pods.daemon {
            daemon.call(
                "DELETE",
                &format!("/api/v1/namespaces/{}/pods/{}", ns_of(&o), name_of(&o)),
            )?;
        }
        println!("removed {}", name_of(&o));
    }
    for r in records {
        if r.is_running() {
            bail!("pod \"{}\" is running; `wasipod stop` it first", r.name());
        }
        r.remove()?;
        println!("removed {}", r.name());
    }
    Ok(ExitCode::SUCCESS)
}
