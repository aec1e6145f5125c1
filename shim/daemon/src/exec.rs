//! `kubectl exec` and `kubectl attach`: the container's program run once
//! more with the given arguments (exec), or the running container's output
//! as it is written (attach), carried over a WebSocket in Kubernetes' channel
//! protocol (`v5.channel.k8s.io`, kubectl's default, and
//! `v4.channel.k8s.io`): every binary message starts with the byte of its
//! stream — 0 stdin, 1 stdout, 2 stderr, 3 the outcome (a `Status`), 4 a
//! terminal resize — and, in v5, `[255, stream]` closes a stream (kubectl
//! closes stdin so at its end).
//!
//! The outcome is the API server's: `Success`, or `NonZeroExitCode` with
//! the exit code as its cause (kubectl exits with it). A client that goes
//! away ends the guest: the exec's future is dropped with the connection.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasipod::sandbox::ExecStreams;

use crate::api::{Api, not_found, status};

/// The channel protocols served, preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[CLOSE, stream]` closes a stream.
const CLOSE: u8 = 255;

/// How many bytes of a stream are buffered between the guest and the
/// connection (the guest waits beyond that).
const PIPE: usize = 64 * 1024;

/// What an exec asks for (the query of `pods/exec`).
#[derive(Debug, Default, PartialEq)]
pub struct ExecQuery {
    /// `command`: the guest's argv.
    pub command: Vec<String>,
    /// `container`.
    pub container: Option<String>,
    /// `stdin`.
    pub stdin: bool,
    /// `stdout`.
    pub stdout: bool,
    /// `stderr`.
    pub stderr: bool,
    /// `tty`.
    pub tty: bool,
}

impl ExecQuery {
    /// Reads a query string (`command` repeats, one argument each).
    pub fn parse(query: &str) -> Self {
        let mut q = ExecQuery::default();
        let yes = |v: &str| matches!(v, "1" | "true" | "True");
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "command" => q.command.push(v.into_owned()),
                "container" => q.container = Some(v.into_owned()),
                "stdin" => q.stdin = yes(&v),
                "stdout" => q.stdout = yes(&v),
                "stderr" => q.stderr = yes(&v),
                "tty" => q.tty = yes(&v),
                _ => {}
            }
        }
        q
    }
}

/// A normal closure (1000): kubectl takes any other as an error.
fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: axum::extract::ws::close_code::NORMAL,
        reason: "".into(),
    }))
}

fn bad_request(message: impl Into<String>) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
}

/// `GET|POST .../pods/{name}/exec`.
///
/// Steps: read the query; find the pod and the container (the only one
/// when none is named) and check it runs; refuse a TTY and a request that
/// is not a WebSocket (kubectl then tries SPDY, which is not served, and
/// prints this message); upgrade, and serve the exec.
pub async fn exec(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let q = ExecQuery::parse(query.as_deref().unwrap_or(""));
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    if q.command.is_empty() {
        return bad_request("you must specify at least 1 command");
    }
    // `kubectl cp` runs `tar` in the container.
    if q.command.first().map(String::as_str) == Some("tar") {
        return bad_request(
            "kubectl cp needs a tar program in the container, and a wasm container has only its own program: copy files through a volume (hostPath, or an emptyDir a container writes), or `kubectl exec POD -- PROGRAM ARGS` with a program that prints the file",
        );
    }
    let container = match target(&pod, &q) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(ws) = ws else {
        return bad_request(
            "wasipod serves exec over WebSocket (v5.channel.k8s.io, kubectl's default); SPDY is not served",
        );
    };
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| serve(socket, pod, container, q))
        .into_response()
}

/// The container a streaming request names (the only one when none is),
/// checked to be running and asked no TTY.
fn target(pod: &wasipod::Pod, q: &ExecQuery) -> Result<String, Box<Response>> {
    let name = pod.name();
    let container = match q.container.clone() {
        Some(c) => c,
        None => match pod.spec().containers.as_slice() {
            [only] => only.name.clone(),
            all => {
                let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
                return Err(Box::new(bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                ))));
            }
        },
    };
    let running = pod
        .status()
        .container(&container)
        .is_some_and(|c| c.state.is_running());
    if !running {
        return Err(Box::new(bad_request(format!(
            "container not found ({container:?})"
        ))));
    }
    if q.tty {
        return Err(Box::new(bad_request(
            "a TTY cannot be given to a wasm container (WASI has no terminals): run kubectl without -t",
        )));
    }
    Ok(container)
}

/// `GET|POST .../pods/{name}/attach`: the running container's output from
/// now on, until its run ends. Its stdin is not attachable (containers run
/// without one).
pub async fn attach(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let q = ExecQuery::parse(query.as_deref().unwrap_or(""));
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    let container = match target(&pod, &q) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if q.stdin {
        return bad_request(format!(
            "container {container} was not started with a stdin to attach to (wasipod runs containers without one): run kubectl attach without -i"
        ));
    }
    let Ok(ws) = ws else {
        return bad_request(
            "wasipod serves attach over WebSocket (v5.channel.k8s.io, kubectl's default); SPDY is not served",
        );
    };
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| follow(socket, pod, container, q))
        .into_response()
}

/// Sends the container's output lines on stdout and stderr until its run
/// ends (or the client goes), then `Success`.
async fn follow(socket: WebSocket, pod: wasipod::Pod, container: String, q: ExecQuery) {
    let (mut sink, mut incoming) = socket.split();
    let mut lines = pod.subscribe_logs();
    let mut status = pod.watch();
    let run = pod
        .status()
        .container(&container)
        .map(|c| c.restart_count)
        .unwrap_or(0);
    let over = |s: &wasipod::PodStatus| {
        s.container(&container)
            .is_none_or(|c| c.restart_count != run || !c.state.is_running())
    };
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Ok(l) if l.container == container => {
                    let (stream, wanted) = match l.stream {
                        wasipod::Stream::Stdout => (STDOUT, q.stdout),
                        wasipod::Stream::Stderr => (STDERR, q.stderr),
                    };
                    if !wanted {
                        continue;
                    }
                    let bytes = [&[stream][..], l.line.as_bytes(), b"\n"].concat();
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            changed = status.changed() => {
                if changed.is_err() || over(&status.borrow_and_update()) {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    // What was written before the end.
    while let Ok(l) = lines.try_recv() {
        if l.container == container {
            let stream = match l.stream {
                wasipod::Stream::Stdout => STDOUT,
                wasipod::Stream::Stderr => STDERR,
            };
            let bytes = [&[stream][..], l.line.as_bytes(), b"\n"].concat();
            let _ = sink.send(Message::Binary(bytes.into())).await;
        }
    }
    let ok = json!({"metadata": {}, "status": "Success"}).to_string();
    let _ = sink
        .send(Message::Binary(
            [&[ERROR][..], ok.as_bytes()].concat().into(),
        ))
        .await;
    let _ = sink.send(normal_close()).await;
}

/// Runs the exec over an upgraded connection.
///
/// Steps: pipes for the streams asked for; the guest started with them;
/// its output sent as it comes; the client's stdin written to it (closed
/// by a v5 close message or the end of the connection); at the guest's
/// end, its output drained, then the outcome on the error stream and the
/// connection closed. The client leaving first drops the guest.
async fn serve(socket: WebSocket, pod: wasipod::Pod, container: String, q: ExecQuery) {
    let (mut sink, mut incoming) = socket.split();
    let (to_client, mut outgoing) = tokio::sync::mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = outgoing.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    });
    let (stdin_tx, stdin_rx) = if q.stdin {
        let (w, r) = tokio::io::duplex(PIPE);
        (Some(w), Some(r))
    } else {
        (None, None)
    };
    let (out_w, out_r) = tokio::io::duplex(PIPE);
    let (err_w, err_r) = tokio::io::duplex(PIPE);
    let pumps = [
        tokio::spawn(pump(out_r, STDOUT, q.stdout, to_client.clone())),
        tokio::spawn(pump(err_r, STDERR, q.stderr, to_client.clone())),
    ];
    let streams = ExecStreams {
        stdin: stdin_rx.map(|r| Box::new(r) as _),
        stdout: Box::new(out_w),
        stderr: Box::new(err_w),
    };
    let argv = q.command.clone();
    // Its own task: the guest runs while this one waits on the client
    // (writing stdin may wait for the guest to read).
    let mut guest = tokio::spawn(async move { pod.exec(&container, argv, streams).await });
    let mut stdin = stdin_tx;
    let outcome = loop {
        tokio::select! {
            result = &mut guest => break Some(result.unwrap_or_else(|e| {
                Err(wasipod::RuntimeError::Engine(format!("the exec failed: {e}")))
            })),
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => match data.first() {
                    Some(&STDIN) => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(&data[1..]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Some(&CLOSE) if data.get(1) == Some(&STDIN) => stdin = None,
                    Some(&RESIZE) | Some(_) | None => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
        }
    };
    // The client is gone: the guest goes with its task.
    let Some(result) = outcome else {
        guest.abort();
        writer.abort();
        return;
    };
    drop(stdin);
    for p in pumps {
        let _ = p.await;
    }
    let _ = to_client
        .send(Message::Binary(
            [
                &[ERROR][..],
                outcome_status(&q.command, result).to_string().as_bytes(),
            ]
            .concat()
            .into(),
        ))
        .await;
    drop(to_client);
    let _ = writer.await;
}

/// Sends what the guest writes on `reader` to the client on `stream` (or
/// drops it when the client did not ask for that stream), until the guest
/// closes it.
async fn pump(
    mut reader: tokio::io::DuplexStream,
    stream: u8,
    wanted: bool,
    to_client: tokio::sync::mpsc::Sender<Message>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    buf[0] = stream;
    loop {
        let n = match reader.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if wanted
            && to_client
                .send(Message::Binary(buf[..=n].to_vec().into()))
                .await
                .is_err()
        {
            return;
        }
    }
}

/// The exec's outcome as the API server reports it on the error stream.
fn outcome_status(
    command: &[String],
    result: Result<wasipod::status::Exit, wasipod::RuntimeError>,
) -> Value {
    match result {
        Ok(exit) if exit.code == 0 => json!({"metadata": {}, "status": "Success"}),
        Ok(exit) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {command:?}, exit code {}",
                exit.code
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": exit.code.to_string()}]},
        }),
        Err(e) => json!({
            "metadata": {},
            "status": "Failure",
            "message": e.to_string(),
            "reason": "InternalError",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_every_argument_in_order() {
        let q = ExecQuery::parse(
            "command=toolbox&command=echo&command=a+b%26c&container=app&stdin=true&stdout=true&stderr=true",
        );
        assert_eq!(q.command, ["toolbox", "echo", "a b&c"]);
        assert_eq!(q.container.as_deref(), Some("app"));
        assert!(q.stdin && q.stdout && q.stderr && !q.tty);
    }

    #[test]
    fn outcomes_carry_the_exit_code() {
        let failed = outcome_status(&["x".into()], Ok(wasipod::status::Exit::code(3)));
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
        let ok = outcome_status(&[], Ok(wasipod::status::Exit::code(0)));
        assert_eq!(ok["status"], "Success");
    }
}
