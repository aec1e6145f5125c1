//! Watches, as the API server serves them: the changes after a resource
//! version (or every matching object as `ADDED` when none is given), then
//! live changes, as newline-separated JSON watch events, until the client
//! goes or `timeoutSeconds` passes. An object that starts or stops
//! matching the selectors is reported `ADDED` or `DELETED`, as the API
//! server does; a "watch list" (`sendInitialEvents`) ends its initial
//! objects with a bookmark.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::{ListQuery, status};
use crate::changes::Changes;

/// An object as a one-row `Table` (for `kubectl get -w`), given the
/// version to report.
pub type ToTable = dyn Fn(&Value, u64) -> Value + Send + Sync;

/// What one watch covers.
pub struct Feed {
    /// The resource whose changes are followed (`pods`, `events`, ...).
    pub resource: &'static str,
    /// Its kind (of the bookmark's object).
    pub kind: &'static str,
    /// The matching objects now, sent as `ADDED` first when no version is
    /// given.
    pub present: Vec<Value>,
    /// Whether an object matches the namespace and selectors.
    pub matches: Box<dyn Fn(&Value) -> bool + Send + Sync>,
    /// Objects sent as `Table` rows, when the client asked for a table.
    pub table: Option<Box<ToTable>>,
}

/// Serves a watch of `feed` from `changes`.
pub fn serve(changes: &Changes, feed: Feed, q: &ListQuery) -> Response {
    let initial_events = q.send_initial_events.unwrap_or(false);
    let given = q
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0 && !initial_events);
    let start = given.unwrap_or_else(|| changes.current());
    let (backlog, mut live) = match changes.watch_from(start) {
        Ok(w) => w,
        Err(_) => {
            return status(
                StatusCode::GONE,
                "Expired",
                format!("too old resource version: {start}"),
                json!({}),
            );
        }
    };
    let Feed {
        resource,
        kind: object_kind,
        present,
        matches,
        table,
    } = feed;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(64);
    let timeout = q.timeout_seconds.map(Duration::from_secs);
    tokio::spawn(async move {
        let encode = |kind: &str, object: &Value| -> bytes::Bytes {
            let object = match &table {
                Some(to_table) => {
                    let rv = object["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    to_table(object, rv)
                }
                None => object.clone(),
            };
            let mut line = json!({"type": kind, "object": object})
                .to_string()
                .into_bytes();
            line.push(b'\n');
            line.into()
        };
        let mut last = start;
        let mut shown: std::collections::HashSet<(String, String)> = Default::default();
        let key = |o: &Value| {
            (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        };
        // Without a version, the watch begins with every pod as ADDED;
        // from a version, with the changes after it.
        for object in &present {
            shown.insert(key(object));
            if given.is_none() && tx.send(Ok(encode("ADDED", object))).await.is_err() {
                return;
            }
        }
        if initial_events {
            let bookmark = json!({
                "type": "BOOKMARK",
                "object": {
                    "kind": object_kind,
                    "apiVersion": "v1",
                    "metadata": {
                        "resourceVersion": start.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                },
            });
            let mut line = bookmark.to_string().into_bytes();
            line.push(b'\n');
            if tx.send(Ok(line.into())).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut pending = backlog.into_iter();
        loop {
            let change = match pending.next() {
                Some(c) => c,
                None => {
                    let next = async {
                        loop {
                            match live.recv().await {
                                Ok(c) => return Some(c),
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                    continue;
                                }
                                Err(_) => return None,
                            }
                        }
                    };
                    let got = match deadline {
                        Some(d) => tokio::select! {
                            c = next => c,
                            _ = tokio::time::sleep_until(d) => None,
                            _ = tx.closed() => None,
                        },
                        None => tokio::select! {
                            c = next => c,
                            _ = tx.closed() => None,
                        },
                    };
                    match got {
                        Some(c) => c,
                        None => return,
                    }
                }
            };
            if change.resource != resource || change.rv <= last {
                continue;
            }
            last = change.rv;
            let k = key(&change.object);
            let kind = match (matches(&change.object), shown.contains(&k)) {
                (true, true) if change.kind == "DELETED" => {
                    shown.remove(&k);
                    "DELETED"
                }
                (true, true) => "MODIFIED",
                (true, false) if change.kind == "DELETED" => continue,
                (true, false) => {
                    shown.insert(k);
                    "ADDED"
                }
                (false, true) => {
                    shown.remove(&k);
                    "DELETED"
                }
                (false, false) => continue,
            };
            if tx.send(Ok(encode(kind, &change.object))).await.is_err() {
                return;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}
