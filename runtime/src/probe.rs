//! Probes and hook actions.
//!
//! - `exec` runs the container's own program once more with the given argv,
//!   in the same sandbox (mounts, env, `/run/wasipod`, pod network), and
//!   kills it when the timeout passes; exit code 0 is success.
//! - `httpGet` is an HTTP/1.1 GET from the host side over the pod network to
//!   the pod's own IP; a status from 200 to 399 is success.
//! - `tcpSocket` succeeds when a listener accepts the connection.
//! - `sleep` (hooks only) waits.
//!
//! Probe loops follow Kubernetes: a startup probe gates the others; a
//! readiness probe counts as failed until it has succeeded
//! `successThreshold` times; liveness or startup failing `failureThreshold`
//! times in a row kills the container (termination sequence, with the
//! probe's grace period if it has one) and the restart policy decides the
//! rest. Failures are reported as `Unhealthy` events.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::log::ContainerLog;
use crate::net::pipe::{PipeReader, PipeWriter};
use crate::pod::supervisor::{Control, PodShared, terminate_one};
use crate::pod::{Action, ContainerSpec, ProbeSpec};
use crate::status::{EventType, ExitReason};

static NEXT_PROBE_PORT: AtomicU16 = AtomicU16::new(40000);

/// Runs an action once. `Ok` carries a short description of the success,
/// `Err` the reason of the failure (both end up in events).
pub(crate) async fn run_action(
    pod: &PodShared,
    c: &ContainerSpec,
    action: &Action,
    timeout: Option<Duration>,
) -> Result<String, String> {
    let work = async {
        match action {
            Action::Exec(argv) => exec(pod, c, argv).await,
            Action::HttpGet {
                port,
                path,
                host,
                headers,
            } => http_get(pod, *port, path, host.as_deref(), headers).await,
            Action::TcpSocket { port } => {
                let target = SocketAddr::new(pod.net.ip.into(), *port);
                match pod.net.enqueue(target, probe_source(pod)) {
                    // Connect, then close at once (the server sees EOF).
                    Ok((to_server, to_client)) => {
                        to_server.close_write();
                        to_client.close_read();
                        Ok(format!("connected to port {port}"))
                    }
                    Err(_) => Err(format!("dial tcp {target}: connect: connection refused")),
                }
            }
            Action::Sleep(d) => {
                tokio::time::sleep(pod.scaled(*d)).await;
                Ok(format!("slept {}s", d.as_secs()))
            }
        }
    };
    match timeout {
        None => work.await,
        Some(t) => match tokio::time::timeout(pod.scaled(t), work).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}s", t.as_secs())),
        },
    }
}

fn probe_source(pod: &PodShared) -> SocketAddr {
    let port = NEXT_PROBE_PORT.fetch_add(1, Ordering::Relaxed).max(40000);
    SocketAddr::new(pod.net.gateway().into(), port)
}

/// `exec`: the container's image, argv replaced, same sandbox.
async fn exec(pod: &PodShared, c: &ContainerSpec, argv: &[String]) -> Result<String, String> {
    let sandbox = pod
        .sandbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or("the pod has no sandbox")?;
    let preopens = sandbox.preopens(c).map_err(|e| e.to_string())?;
    // The container's own runtime folder, so that an exec sees what the
    // container sees (a fresh one if the container is not running).
    let run_dir = crate::volume::run_dir(&pod.dir, &c.name);
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let log_path = pod.dir.join(&c.name).join("exec.log");
    let log = ContainerLog::create(
        &log_path,
        64 * 1024,
        &c.name,
        std::sync::Arc::new(crate::fanout::Fanout::new(1)),
        &pod.log_files,
    )
    .map_err(|e| e.to_string())?;
    let cfg = pod
        .guest_config(c, Some(argv.to_vec()), preopens, &run_dir, log)
        .map_err(|e| e.to_string())?;
    let exit = pod.engine.run(&pod.image_of(c), cfg).await;
    let output = crate::log::read_log(&log_path).unwrap_or_default();
    let output: String = String::from_utf8_lossy(&output)
        .chars()
        .take(1024)
        .collect();
    match (exit.code, exit.reason) {
        (0, ExitReason::Completed) => Ok(output.trim_end().to_string()),
        (code, _) => Err(format!(
            "command {argv:?} exited with {code}: {}",
            output.trim_end()
        )),
    }
}

/// `httpGet`: a request over the pod network, the response's status.
async fn http_get(
    pod: &PodShared,
    port: u16,
    path: &str,
    host: Option<&str>,
    headers: &[(String, String)],
) -> Result<String, String> {
    let target = SocketAddr::new(pod.net.ip.into(), port);
    let refused =
        || format!("Get \"http://{target}{path}\": dial tcp {target}: connect: connection refused");
    let (to_server, to_client) = pod
        .net
        .enqueue(target, probe_source(pod))
        .map_err(|_| refused())?;
    let mut writer = PipeWriter(to_server);
    let mut reader = PipeReader(to_client);
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kube-probe/wasipod\r\nAccept: */*\r\nConnection: close\r\n",
        host.map(str::to_string)
            .unwrap_or_else(|| target.to_string())
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut rest = request.as_bytes();
    while !rest.is_empty() {
        writer.writable().await;
        let room = writer
            .room()
            .map_err(|_| "connection closed while sending the request".to_string())?;
        let n = room.min(rest.len());
        writer
            .write_now(&rest[..n])
            .map_err(|_| "connection closed while sending the request".to_string())?;
        rest = &rest[n..];
    }
    let mut response = Vec::new();
    let status_line = loop {
        if let Some(end) = response.windows(2).position(|w| w == b"\r\n") {
            break String::from_utf8_lossy(&response[..end]).into_owned();
        }
        if response.len() > 8192 {
            return Err("malformed HTTP response".into());
        }
        reader.readable().await;
        match reader.read_now(4096) {
            Ok(bytes) => response.extend_from_slice(&bytes),
            Err(_) => {
                return Err(format!(
                    "Get \"http://{target}{path}\": EOF before a response"
                ));
            }
        }
    };
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("malformed HTTP status line {status_line:?}"))?;
    if (200..400).contains(&code) {
        Ok(format!("HTTP probe succeeded with statuscode: {code}"))
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// The probe loops of one running container. Never returns on its own
/// (the container's run ends it); a liveness or startup failure starts the
/// termination sequence of the container.
pub(crate) async fn probe_loops(pod: &PodShared, c: &ContainerSpec, control: &Control) {
    if let Some(p) = &c.startup_probe {
        tokio::time::sleep(pod.scaled(p.initial_delay)).await;
        let mut failures = 0;
        loop {
            match run_action(pod, c, &p.action, Some(p.timeout)).await {
                Ok(_) => break,
                Err(why) => {
                    failures += 1;
                    unhealthy(pod, c, "Startup", &why);
                    if failures >= p.failure_threshold {
                        restart_unhealthy(pod, c, control, "startup", p).await;
                        return std::future::pending().await;
                    }
                }
            }
            tokio::time::sleep(pod.scaled(p.period)).await;
        }
    }
    pod.set_probe_state(c, Some(true), c.readiness_probe.is_none().then_some(true));
    tokio::join!(liveness(pod, c, control), readiness(pod, c));
}

async fn liveness(pod: &PodShared, c: &ContainerSpec, control: &Control) {
    let Some(p) = &c.liveness_probe else {
        return std::future::pending().await;
    };
    tokio::time::sleep(pod.scaled(p.initial_delay)).await;
    let mut failures = 0;
    loop {
        match run_action(pod, c, &p.action, Some(p.timeout)).await {
            Ok(_) => failures = 0,
            Err(why) => {
                failures += 1;
                unhealthy(pod, c, "Liveness", &why);
                if failures >= p.failure_threshold {
                    restart_unhealthy(pod, c, control, "liveness", p).await;
                    return std::future::pending().await;
                }
            }
        }
        tokio::time::sleep(pod.scaled(p.period)).await;
    }
}

async fn readiness(pod: &PodShared, c: &ContainerSpec) {
    let Some(p) = &c.readiness_probe else {
        return std::future::pending().await;
    };
    tokio::time::sleep(pod.scaled(p.initial_delay)).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        match run_action(pod, c, &p.action, Some(p.timeout)).await {
            Ok(_) => {
                failures = 0;
                successes += 1;
                if successes >= p.success_threshold {
                    pod.set_probe_state(c, None, Some(true));
                }
            }
            Err(why) => {
                successes = 0;
                failures += 1;
                unhealthy(pod, c, "Readiness", &why);
                if failures >= p.failure_threshold {
                    pod.set_probe_state(c, None, Some(false));
                }
            }
        }
        tokio::time::sleep(pod.scaled(p.period)).await;
    }
}

fn unhealthy(pod: &PodShared, c: &ContainerSpec, which: &str, why: &str) {
    pod.event(
        EventType::Warning,
        "Unhealthy",
        &PodShared::object(c),
        format!("{which} probe failed: {why}"),
    );
}

async fn restart_unhealthy(
    pod: &PodShared,
    c: &ContainerSpec,
    control: &Control,
    which: &str,
    p: &ProbeSpec,
) {
    pod.event(
        EventType::Normal,
        "Killing",
        &PodShared::object(c),
        format!(
            "Container {} failed {which} probe, will be restarted",
            c.name
        ),
    );
    let grace = p.grace.unwrap_or(pod.spec.termination_grace_period);
    terminate_one(pod, &c.name, control, grace).await;
}
