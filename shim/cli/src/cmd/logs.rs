//! `wasipod logs`: a container's log, of a running or finished pod (the
//! daemon's, or one a `wasipod run` recorded).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use wasipod::LogOptions;

use super::Pods;
use crate::daemon::encode;

pub(crate) fn logs(
    pods: &Pods,
    namespace: &str,
    pod: &str,
    options: LogOptions,
) -> Result<ExitCode> {
    let bytes = match pods.daemon_pod(namespace, pod)? {
        Some((daemon, _)) => daemon.call("GET", &log_path(namespace, pod, &options))?,
        None => pods.record(namespace, pod)?.logs(&options)?,
    };
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// `pods/log` with the options as its query.
fn log_path(namespace: &str, pod: &str, o: &LogOptions) -> String {
    let mut query = Vec::new();
    if !o.container.is_empty() {
        query.push(format!("container={}", encode(&o.container)));
    }
    if o.previous {
        query.push("previous=true".into());
    }
    if let Some(n) = o.tail_lines {
        query.push(format!("tailLines={n}"));
    }
    if let Some(n) = o.limit_bytes {
        query.push(format!("limitBytes={n}"));
    }
    if o.timestamps {
        query.push("timestamps=true".into());
    }
    format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}/log?{}",
        query.join("&")
    )
}
