//! One module per verb, and what several verbs print the same way.

pub(crate) mod bench;
pub(crate) mod get;
pub(crate) mod logs;
pub(crate) mod rm;
pub(crate) mod run;
pub(crate) mod stop;
pub(crate) mod validate;

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use wasipod::{PodObject, PodSpec};

use crate::Format;

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
