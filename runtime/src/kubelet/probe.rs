//! Probes and hook actions.
//!
//! - `exec` runs the container's own program once more with the given argv,
//!   in the same sandbox (mounts, env, `/run/wasipod`, pod network), and
//!   kills it when the timeout passes; exit code 0 is success.
//! - `httpGet` is an HTTP/1.1 GET from the host side over the pod network to
//!   the pod's own IP; a status from 200 to 399 is success.
//! - `tcpSocket` succeeds when a listener accepts the connection.
//! - `grpc` calls `grpc.health.v1.Health/Check` over the pod network with
//!   the gRPC project's client (tonic, HTTP/2 by hyper); `SERVING` is
//!   success.
//! - `sleep` (hooks only) waits.
//!
//! One worker type serves the three probe kinds, as the kubelet's prober
//! does: it counts consecutive successes and failures against the
//! thresholds and reports — readiness and startup into the status, a
//! liveness or startup failure to its caller as a [`ProbeFailure`]. It never
//! stops a container: the pod worker decides what to do. Failures are
//! reported as `Unhealthy` events.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use super::clock::scale;
use super::status::{StatusWriter, object};
use crate::api::status::{EventReason, EventType, ExitReason};
use crate::net::pipe::{PipeReader, PipeWriter};
use crate::sandbox::{Container, PodSandbox};
use crate::spec::{Action, ContainerSpec, ProbeSpec};

static NEXT_PROBE_PORT: AtomicU16 = AtomicU16::new(40000);

/// What an action acts on: a running container of a sandbox, and the
/// runtime's time scale.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub sandbox: &'a PodSandbox,
    pub container: &'a Container,
    pub time_scale: f64,
}

/// Runs an action once. `Ok` carries a short description of the success,
/// `Err` the reason of the failure (both end up in events).
pub(crate) async fn run_action(
    target: Target<'_>,
    action: &Action,
    timeout: Option<Duration>,
) -> Result<String, String> {
    let work = async {
        match action {
            Action::Exec(argv) => exec(target.container, argv).await,
            Action::HttpGet {
                port,
                path,
                host,
                headers,
            } => http_get(target.sandbox, *port, path, host.as_deref(), headers).await,
            Action::TcpSocket { port } => {
                let net = target.sandbox.net();
                let addr = SocketAddr::new(net.ip.into(), *port);
                match net.enqueue(addr, probe_source(target.sandbox)) {
                    // Connect, then close at once (the server sees EOF).
                    Ok((to_server, to_client)) => {
                        to_server.close_write();
                        to_client.close_read();
                        Ok(format!("connected to port {port}"))
                    }
                    Err(_) => Err(format!("dial tcp {addr}: connect: connection refused")),
                }
            }
            Action::Grpc { port, service } => grpc_check(target.sandbox, *port, service).await,
            Action::Sleep(d) => {
                tokio::time::sleep(scale(*d, target.time_scale)).await;
                Ok(format!("slept {}s", d.as_secs()))
            }
        }
    };
    match timeout {
        None => work.await,
        Some(t) => match tokio::time::timeout(scale(t, target.time_scale), work).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}s", t.as_secs())),
        },
    }
}

fn probe_source(sandbox: &PodSandbox) -> SocketAddr {
    let port = NEXT_PROBE_PORT.fetch_add(1, Ordering::Relaxed).max(40000);
    SocketAddr::new(sandbox.net().gateway().into(), port)
}

/// `exec`: the container's image, argv replaced, same sandbox.
async fn exec(container: &Container, argv: &[String]) -> Result<String, String> {
    let result = container
        .exec(argv.to_vec())
        .await
        .map_err(|e| e.to_string())?;
    let output: String = String::from_utf8_lossy(&result.output)
        .chars()
        .take(1024)
        .collect();
    match (result.exit.code, result.exit.reason) {
        (0, ExitReason::Completed) => Ok(output.trim_end().to_string()),
        (code, _) => Err(format!(
            "command {argv:?} exited with {code}: {}",
            output.trim_end()
        )),
    }
}

/// `httpGet`: a request over the pod network, the response's status.
async fn http_get(
    sandbox: &PodSandbox,
    port: u16,
    path: &str,
    host: Option<&str>,
    headers: &[(String, String)],
) -> Result<String, String> {
    let target = SocketAddr::new(sandbox.net().ip.into(), port);
    let refused =
        || format!("Get \"http://{target}{path}\": dial tcp {target}: connect: connection refused");
    let (to_server, to_client) = sandbox
        .net()
        .enqueue(target, probe_source(sandbox))
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

/// `grpc`: `grpc.health.v1.Health/Check` for `service` on the pod's own
/// IP, with the kubelet's messages.
async fn grpc_check(sandbox: &PodSandbox, port: u16, service: &str) -> Result<String, String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let target = SocketAddr::new(sandbox.net().ip.into(), port);
    let failed = |e: &dyn std::fmt::Display| format!("failed to connect service \"{target}\": {e}");
    let (to_server, to_client) = sandbox
        .net()
        .enqueue(target, probe_source(sandbox))
        .map_err(|_| failed(&"connection refused"))?;
    // One connection, already made on the pod network, handed to the
    // client as its transport.
    let mut stream = Some(crate::net::bridge::stream(to_server, to_client));
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let stream = stream.take();
        async move {
            stream
                .map(hyper_util::rt::TokioIo::new)
                .ok_or_else(|| std::io::Error::other("one connection per probe"))
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| failed(&e))?
        .connect_with_connector(connector)
        .await
        .map_err(|e| failed(&e))?;
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => match response.into_inner().status() {
            ServingStatus::Serving => Ok(format!("service {service:?} is SERVING")),
            other => Err(format!(
                "service unhealthy (responded with {:?})",
                other.as_str_name()
            )),
        },
        Err(status) if status.code() == tonic::Code::Unimplemented => Err(format!(
            "this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            status.message()
        )),
        Err(status) => Err(format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        )),
    }
}

/// The three kinds of probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// `startupProbe`: gates the others.
    Startup,
    /// `livenessProbe`: failing, the container is restarted.
    Liveness,
    /// `readinessProbe`: sets `ready`.
    Readiness,
}

impl ProbeKind {
    fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A liveness or startup probe reached its failure threshold: the pod worker
/// stops the container (with `grace`, the probe's own or the pod's) and the
/// restart policy decides the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeFailure {
    pub kind: ProbeKind,
    pub grace: Option<Duration>,
}

impl ProbeFailure {
    /// `liveness`, `startup`, as the kubelet's Killing event says.
    pub(crate) fn probe_name(self) -> &'static str {
        match self.kind {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        }
    }
}

/// What a probe worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// `successThreshold` successes in a row.
    Passed,
    /// `failureThreshold` failures in a row.
    Failed,
}

/// One probe, repeated every period: counts consecutive results against
/// its thresholds and reports each change of verdict to `report`. Returns
/// when `report` says it has heard enough.
async fn worker(
    kind: ProbeKind,
    probe: &ProbeSpec,
    target: Target<'_>,
    status: &StatusWriter,
    c: &ContainerSpec,
    mut report: impl FnMut(Verdict) -> bool,
) {
    let scaled = |d| scale(d, target.time_scale);
    tokio::time::sleep(scaled(probe.initial_delay)).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        let verdict = match run_action(target, &probe.action, Some(probe.timeout)).await {
            Ok(_) => {
                failures = 0;
                successes += 1;
                (successes >= probe.success_threshold).then_some(Verdict::Passed)
            }
            Err(why) => {
                successes = 0;
                failures += 1;
                status.event(
                    EventType::Warning,
                    EventReason::Unhealthy,
                    &object(c),
                    format!("{} probe failed: {why}", kind.name()),
                );
                (failures >= probe.failure_threshold).then_some(Verdict::Failed)
            }
        };
        if let Some(v) = verdict
            && report(v)
        {
            return;
        }
        tokio::time::sleep(scaled(probe.period)).await;
    }
}

/// The probes of one running container. Returns only when a startup or
/// liveness probe has failed for good; `started` and `ready` go into the
/// status as the probes pass and fail.
pub(crate) async fn watch(
    target: Target<'_>,
    status: &StatusWriter,
    c: &ContainerSpec,
) -> ProbeFailure {
    if let Some(p) = &c.startup_probe {
        let mut passed = false;
        worker(ProbeKind::Startup, p, target, status, c, |v| {
            passed = v == Verdict::Passed;
            true
        })
        .await;
        if !passed {
            return ProbeFailure {
                kind: ProbeKind::Startup,
                grace: p.grace,
            };
        }
    }
    status.set_probe_state(c, Some(true), c.readiness_probe.is_none().then_some(true));
    let liveness = async {
        match &c.liveness_probe {
            Some(p) => {
                worker(ProbeKind::Liveness, p, target, status, c, |v| {
                    v == Verdict::Failed
                })
                .await;
                ProbeFailure {
                    kind: ProbeKind::Liveness,
                    grace: p.grace,
                }
            }
            None => std::future::pending().await,
        }
    };
    let readiness = async {
        if let Some(p) = &c.readiness_probe {
            worker(ProbeKind::Readiness, p, target, status, c, |v| {
                status.set_probe_state(c, None, Some(v == Verdict::Passed));
                false
            })
            .await;
        }
        // Readiness never ends a container.
        std::future::pending::<ProbeFailure>().await
    };
    tokio::select! {
        failure = liveness => failure,
        failure = readiness => failure,
    }
}
