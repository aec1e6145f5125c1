//! `kubectl port-forward`: SPDY streams in a WebSocket (see [`crate::spdy`]),
//! as the kubelet serves them. For each connection kubectl accepts, it
//! opens two streams with the same `requestid`: `streamtype: error` and
//! `streamtype: data`, both naming the `port`. The daemon answers every
//! stream, then connects to the port on the pod's loopback over the
//! virtual network and copies bytes both ways (a `FIN` on the data stream
//! is a half-close); a refused connection is reported on the error stream
//! as the kubelet words it. The error stream is closed when the connection
//! is done.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::{Api, not_found, status};
use crate::spdy::{Decoder, Encoder, Frame};

/// The WebSocket protocol kubectl asks for: SPDY tunnelled.
const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The largest data frame sent.
const CHUNK: usize = 32 * 1024;
/// Frames queued towards the client before senders wait.
const QUEUE: usize = 64;

/// `GET|POST .../pods/{name}/portforward`.
pub async fn portforward(
    State(api): State<Arc<Api>>,
    Path((ns, name)): Path<(String, String)>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    let Ok(ws) = ws else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "wasipod serves port-forward as SPDY over WebSocket (kubectl's default); plain SPDY upgrades are not served",
            json!({}),
        );
    };
    ws.protocols([PROTOCOL])
        .on_upgrade(move |socket| session(socket, pod))
        .into_response()
}

/// What the session knows of one stream.
struct Stream {
    request: String,
    error: bool,
    port: Option<u16>,
    /// Bytes from the client for the pod (data streams, once forwarding).
    to_pod: Option<mpsc::Sender<Option<Vec<u8>>>>,
}

/// One port-forward session.
///
/// Steps: a writer task owns the socket's sending half and the encoder;
/// frames are read from the client: each new stream is answered, and once
/// both streams of a request are there its connection is forwarded
/// ([`forward`]); data frames go to their connection, pings are answered,
/// resets end a connection; the session ends with the socket, every
/// connection with it.
async fn session(socket: WebSocket, pod: wasipod::Pod) {
    let (mut sink, mut incoming) = socket.split();
    let (frames, mut outgoing) = mpsc::channel::<Frame>(QUEUE);
    let writer = tokio::spawn(async move {
        let mut encoder = Encoder::default();
        while let Some(frame) = outgoing.recv().await {
            let bytes = encoder.encode(&frame);
            if sink.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut decoder = Decoder::default();
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    let mut forwards: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    'session: while let Some(Ok(message)) = incoming.next().await {
        match message {
            Message::Binary(bytes) => decoder.push(&bytes),
            Message::Close(_) => break,
            _ => continue,
        }
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => break 'session,
            };
            match frame {
                Frame::SynStream {
                    stream, headers, ..
                } => {
                    let get =
                        |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    let _ = frames
                        .send(Frame::SynReply {
                            stream,
                            fin: false,
                            headers: Vec::new(),
                        })
                        .await;
                    let request = get("requestid").unwrap_or_default();
                    streams.insert(
                        stream,
                        Stream {
                            request: request.clone(),
                            error: get("streamtype").as_deref() == Some("error"),
                            port: get("port").and_then(|p| p.parse().ok()),
                            to_pod: None,
                        },
                    );
                    // Both streams of the request are here: forward.
                    let pair: Vec<u32> = streams
                        .iter()
                        .filter(|(_, s)| s.request == request)
                        .map(|(id, _)| *id)
                        .collect();
                    let error = pair.iter().find(|id| streams[id].error).copied();
                    let data = pair.iter().find(|id| !streams[id].error).copied();
                    if let (Some(error), Some(data)) = (error, data)
                        && !forwards.contains_key(&request)
                    {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        let port = streams[&data].port;
                        if let Some(s) = streams.get_mut(&data) {
                            s.to_pod = Some(tx);
                        }
                        let task = tokio::spawn(forward(
                            pod.clone(),
                            port,
                            (error, data),
                            rx,
                            frames.clone(),
                        ));
                        forwards.insert(request, task);
                    }
                }
                Frame::Data { stream, fin, data } => {
                    let Some(s) = streams.get_mut(&stream) else {
                        continue;
                    };
                    if let Some(tx) = &s.to_pod {
                        if !data.is_empty() && tx.send(Some(data)).await.is_err() {
                            s.to_pod = None;
                        } else if fin {
                            let _ = tx.send(None).await;
                            s.to_pod = None;
                        }
                    }
                }
                Frame::RstStream { stream, .. } => {
                    if let Some(s) = streams.remove(&stream)
                        && let Some(task) = forwards.remove(&s.request)
                    {
                        task.abort();
                    }
                }
                Frame::Ping { id } => {
                    let _ = frames.send(Frame::Ping { id }).await;
                }
                Frame::GoAway { .. } => break 'session,
                Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored => {}
            }
        }
    }
    for (_, task) in forwards {
        task.abort();
    }
    drop(frames);
    let _ = writer.await;
}

/// One forwarded connection: to `port` on the pod's loopback; the
/// client's bytes arrive on `from_client` (`None`: its half-close); the
/// pod's go out as data frames, with a `FIN` at its end, and then the
/// error stream is closed. A refused connection is written on the error
/// stream first.
async fn forward(
    pod: wasipod::Pod,
    port: Option<u16>,
    (error, data): (u32, u32),
    mut from_client: mpsc::Receiver<Option<Vec<u8>>>,
    frames: mpsc::Sender<Frame>,
) {
    let close = |stream: u32| Frame::Data {
        stream,
        fin: true,
        data: Vec::new(),
    };
    let connected = match port {
        Some(p) => pod.sandbox().connect(p).map_err(|e| (p, e.to_string())),
        None => Err((0, "no port was given".to_string())),
    };
    let conn = match connected {
        Ok(c) => c,
        Err((p, why)) => {
            let message = format!(
                "error forwarding port {p} to pod {}, uid {}: failed to connect to localhost:{p} inside the pod: {why}",
                pod.name(),
                pod.uid()
            );
            let _ = frames
                .send(Frame::Data {
                    stream: error,
                    fin: false,
                    data: message.into_bytes(),
                })
                .await;
            let _ = frames.send(close(error)).await;
            let _ = frames.send(close(data)).await;
            return;
        }
    };
    let (mut rd, mut wr) = tokio::io::split(conn);
    // The client's side goes on by itself (until its half-close or the
    // stream's reset); the pod's side closing ends the connection, as
    // under the kubelet: kubectl waits for the error stream's end.
    let to_pod = async move {
        while let Some(Some(bytes)) = from_client.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    };
    let to_client = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Frame::Data {
                        stream: data,
                        fin: false,
                        data: buf[..n].to_vec(),
                    };
                    if frames.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = frames.send(close(data)).await;
    };
    let client_side = tokio::spawn(to_pod);
    to_client.await;
    let _ = frames.send(close(error)).await;
    // The streams are reset or the session ends next; the client's side
    // ends then at the latest.
    let _ = client_side.await;
}
