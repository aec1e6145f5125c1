//! The Kubernetes-compatible API: discovery, namespaces and pods, in the
//! API server's own shapes (`Status` errors, `PodList`, the `Table` that
//! `kubectl get` asks for).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use wasipod::{ErrorKind, ManifestError, Pod, PodSpec, Runtime, RuntimeError};

/// What every handler shares.
pub struct Api {
    /// The pods.
    pub runtime: Runtime,
    /// The node's name (`spec.nodeName`, the NODE column).
    pub node: String,
    /// Where relative image paths in manifests resolve.
    pub base_dir: std::path::PathBuf,
}

type Shared = Arc<Api>;

/// The routes (authentication is the server's, around them).
pub fn router(api: Shared) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/api/v1", get(resources))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/api/v1", get(openapi_v1))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route("/api/v1/namespaces/{ns}", get(get_namespace))
        .route("/api/v1/pods", get(list_all_pods))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_pods).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod).delete(delete_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .fallback(not_found_path)
        .with_state(api)
}

/// A `metav1.Status` failure.
pub fn status(
    code: StatusCode,
    reason: &str,
    message: impl Into<String>,
    details: Value,
) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "details": details,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

fn not_found(kind: &str, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{kind} \"{name}\" not found"),
        json!({"name": name, "kind": kind}),
    )
}

async fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        json!({}),
    )
}

async fn version() -> Response {
    axum::Json(json!({
        "major": "1",
        "minor": "37",
        "gitVersion": concat!("v1.37.0-wasipod.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    }))
    .into_response()
}

async fn api_versions() -> Response {
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    }))
    .into_response()
}

async fn api_groups() -> Response {
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})).into_response()
}

async fn resources() -> Response {
    let resource = |name: &str, kind: &str, namespaced: bool, verbs: &[&str], short: &[&str]| {
        json!({
            "name": name,
            "singularName": if name.contains('/') { "" } else { kind_singular(kind) },
            "namespaced": namespaced,
            "kind": kind,
            "verbs": verbs,
            "shortNames": short,
        })
    };
    axum::Json(json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            resource("namespaces", "Namespace", false, &["get", "list"], &["ns"]),
            resource("pods", "Pod", true, &["create", "delete", "get", "list"], &["po"]),
            resource("pods/log", "Pod", true, &["get"], &[]),
        ],
    }))
    .into_response()
}

/// The OpenAPI v3 index: the one group-version served.
async fn openapi_root() -> Response {
    axum::Json(json!({
        "paths": {"api/v1": {"serverRelativeURL": concat!("/openapi/v3/api/v1?hash=wasipod-", env!("CARGO_PKG_VERSION"))}}
    }))
    .into_response()
}

/// The OpenAPI v3 document of `v1`, as far as clients read it: kubectl
/// looks for the `fieldValidation` parameter on each kind's PATCH
/// operation to know that the server validates strictly itself (it does:
/// the manifest validation refuses unknown fields).
async fn openapi_v1() -> Response {
    let patch = |kind: &str| {
        json!({
            "patch": {
                "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {}
            }
        })
    };
    axum::Json(json!({
        "openapi": "3.0.0",
        "info": {"title": "wasipod", "version": concat!("v1.37.0-wasipod.", env!("CARGO_PKG_VERSION"))},
        "paths": {
            "/api/v1/namespaces/{namespace}/pods/{name}": patch("Pod"),
            "/api/v1/namespaces/{name}": patch("Namespace"),
        },
        "components": {"schemas": {}}
    }))
    .into_response()
}

fn kind_singular(kind: &str) -> &'static str {
    match kind {
        "Namespace" => "namespace",
        _ => "pod",
    }
}

/// Namespaces: those of the pods, and `default`.
fn namespaces(api: &Api) -> Vec<String> {
    let mut all: Vec<String> = api
        .runtime
        .list(None)
        .iter()
        .map(|p| p.namespace().to_string())
        .collect();
    all.push("default".into());
    all.sort();
    all.dedup();
    all
}

fn namespace_object(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": stable_uid(name)},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// A uid that stays the same for a name (namespaces are not stored).
fn stable_uid(name: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (i, name).hash(&mut h);
        *part = h.finish();
    }
    uuid::Uuid::from_u64_pair(parts[0], parts[1]).to_string()
}

async fn list_namespaces(State(api): State<Shared>) -> Response {
    let items: Vec<Value> = namespaces(&api)
        .iter()
        .map(|n| namespace_object(n))
        .collect();
    axum::Json(json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items}))
        .into_response()
}

async fn get_namespace(State(api): State<Shared>, Path(ns): Path<String>) -> Response {
    if namespaces(&api).contains(&ns) {
        axum::Json(namespace_object(&ns)).into_response()
    } else {
        not_found("namespaces", &ns)
    }
}

/// The pod as the API serves it: its object with `spec.nodeName`.
fn pod_object(api: &Api, pod: &Pod) -> Value {
    let mut v = serde_json::to_value(pod.to_object()).unwrap_or(Value::Null);
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("nodeName".into(), Value::String(api.node.clone()));
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("resourceVersion")
            .or_insert_with(|| Value::String("1".into()));
    }
    v
}

/// Whether the client asked for a `Table` (as `kubectl get` does).
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| first.contains("as=Table"))
}

/// `kubectl get pods`' columns, computed as kubectl's pod printer does.
fn pod_table(api: &Api, pods: &[Pod]) -> Value {
    let now = chrono::Utc::now();
    let column = |name: &str, kind: &str, format: &str, priority: u8, description: &str| json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority});
    let rows: Vec<Value> = pods
        .iter()
        .map(|pod| {
            let object = pod.to_object();
            let row = wasipod::table::PodRow::of(&object.metadata, &object.spec, &object.status, now);
            json!({
                "cells": [pod.name(), row.ready, row.status, row.restarts, row.age, row.ip, api.node, "<none>", "<none>"],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": pod_object(api, pod)["metadata"].clone(),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": [
            column("Name", "string", "name", 0, "Name must be unique within a namespace."),
            column("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
            column("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            column("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
            column("IP", "string", "", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            column("Node", "string", "", 1, "NodeName is a request to schedule this pod onto a specific node."),
            column("Nominated Node", "string", "", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
            column("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        "rows": rows,
    })
}

fn pod_list(api: &Api, headers: &HeaderMap, pods: Vec<Pod>) -> Response {
    if wants_table(headers) {
        return axum::Json(pod_table(api, &pods)).into_response();
    }
    let items: Vec<Value> = pods.iter().map(|p| pod_object(api, p)).collect();
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}))
        .into_response()
}

async fn list_all_pods(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let pods = api.runtime.list(None);
    pod_list(&api, &headers, pods)
}

async fn list_pods(
    State(api): State<Shared>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pods = api.runtime.list(Some(&ns));
    pod_list(&api, &headers, pods)
}

async fn get_pod(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match api.runtime.get(&ns, &name) {
        Some(pod) if wants_table(&headers) => axum::Json(pod_table(&api, &[pod])).into_response(),
        Some(pod) => axum::Json(pod_object(&api, &pod)).into_response(),
        None => not_found("pods", &name),
    }
}

/// A manifest error as the API server reports an invalid object: `422
/// Invalid` with one cause per field.
fn invalid(name: &str, e: &ManifestError) -> Response {
    let causes: Vec<Value> = e
        .field_errors()
        .iter()
        .map(|f| json!({"reason": "FieldValueInvalid", "message": f.message, "field": f.path}))
        .collect();
    let message = if causes.is_empty() {
        e.to_string()
    } else {
        format!(
            "Pod \"{name}\" is invalid: {}",
            e.field_errors()
                .iter()
                .map(|f| format!("{}: {}", f.path, f.message))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        message,
        json!({"name": name, "kind": "Pod", "causes": causes}),
    )
}

fn runtime_error(e: RuntimeError) -> Response {
    let (code, reason) = match e.kind() {
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "AlreadyExists"),
        ErrorKind::InvalidArgument => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ErrorKind::FailedPrecondition => (StatusCode::CONFLICT, "Conflict"),
        ErrorKind::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    status(code, reason, e.to_string(), json!({"kind": "pods"}))
}

async fn create_pod(
    State(api): State<Shared>,
    Path(ns): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("the body is not JSON: {e}"),
                json!({}),
            );
        }
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
    match doc["metadata"]["namespace"].as_str() {
        Some(given) if given != ns => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
                json!({}),
            );
        }
        Some(_) => {}
        None => {
            if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
        }
    }
    let spec = match PodSpec::from_yaml(&doc.to_string(), &api.base_dir) {
        Ok(spec) => spec,
        Err(e) => return invalid(&name, &e),
    };
    if api.runtime.get(&ns, &spec.name).is_some() {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("pods \"{}\" already exists", spec.name),
            json!({"name": spec.name, "kind": "pods"}),
        );
    }
    match api.runtime.create_pod(spec).await {
        Ok(pod) => (StatusCode::CREATED, axum::Json(pod_object(&api, &pod))).into_response(),
        Err(e) => runtime_error(e),
    }
}

/// `DeleteOptions`, from the query or the body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptions {
    grace_period_seconds: Option<i64>,
}

async fn delete_pod(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<DeleteOptions>,
    body: axum::body::Bytes,
) -> Response {
    let from_body: DeleteOptions = serde_json::from_slice(&body).unwrap_or_default();
    let grace = query
        .grace_period_seconds
        .or(from_body.grace_period_seconds)
        .map(|s| Duration::from_secs(s.max(0) as u64));
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    // The pod shows `Terminating` (deletionTimestamp) while it stops; the
    // object goes once it has stopped.
    let stopping = pod.clone();
    tokio::spawn(async move {
        stopping.delete(grace).await;
    });
    for _ in 0..1000 {
        if pod.to_object().metadata.deletion_timestamp.is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    axum::Json(pod_object(&api, &pod)).into_response()
}

/// `pods/log` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogQuery {
    container: Option<String>,
    previous: Option<bool>,
    tail_lines: Option<usize>,
}

async fn pod_log(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    let container = match q.container {
        Some(c) => c,
        None => match pod.spec().containers.as_slice() {
            [only] => only.name.clone(),
            _ => {
                let names: Vec<&str> = pod
                    .spec()
                    .containers
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        names.join(" ")
                    ),
                    json!({}),
                );
            }
        },
    };
    let mut options = wasipod::LogOptions::container(&container);
    if q.previous.unwrap_or(false) {
        options = options.previous();
    }
    if let Some(n) = q.tail_lines {
        options = options.tail(n);
    }
    match pod.logs(&options) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain")], bytes).into_response(),
        Err(e) => runtime_error(e),
    }
}
