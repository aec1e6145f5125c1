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
use wasipod::{
    ErrorKind, ManifestError, Pod, PodChange, PodObject, PodSpec, Runtime, RuntimeError,
};

use crate::changes::{Changes, Selector};
use crate::objects::{self, Objects};

/// What every handler shares.
pub struct Api {
    /// The pods.
    pub runtime: Runtime,
    /// The node's name (`spec.nodeName`, the NODE column).
    pub node: String,
    /// Where relative image paths in manifests resolve.
    pub base_dir: std::path::PathBuf,
    /// Resource versions and watch events.
    pub changes: Changes,
    /// ConfigMaps and Secrets.
    pub objects: Objects,
    /// The namespaces (the built-in ones, and those created).
    pub namespaces: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Static pods' mirror objects: the uid each shows, by (namespace,
    /// name) (see [`crate::static_pods`]).
    pub mirrors: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
    /// Where namespaces, ConfigMaps and Secrets are stored.
    pub disk: crate::persist::Disk,
    /// Static pod files that failed, with the hash of the content that did
    /// (each failure is said once).
    pub static_errors: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, String>>,
}

/// Feeds the pods' changes into [`Api::changes`] (started before serving).
pub fn follow_pods(api: &Shared) {
    let mut rx = api.runtime.watch();
    let api = api.clone();
    tokio::spawn(async move {
        loop {
            let (kind, object) = match rx.recv().await {
                Ok(PodChange::Added(o)) => ("ADDED", o),
                Ok(PodChange::Modified(o)) => ("MODIFIED", o),
                Ok(PodChange::Deleted(o)) => ("DELETED", o),
                // Changes were missed: every pod's state now, so that
                // watchers converge on it.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for pod in api.runtime.list(None) {
                        let value = object_value(&api, &pod.to_object());
                        api.changes.record("pods", "MODIFIED", value);
                    }
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let value = object_value(&api, &object);
            api.changes.record("pods", kind, value);
        }
    });
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
        .route(
            "/api/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/api/v1/namespaces/{ns}",
            get(get_namespace).delete(delete_namespace),
        )
        .route("/api/v1/pods", get(list_all_pods))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_pods).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod)
                .patch(patch_pod)
                .put(update_pod)
                .delete(delete_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(crate::exec::exec).post(crate::exec::exec),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            get(crate::exec::attach).post(crate::exec::attach),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            get(crate::portforward::portforward).post(crate::portforward::portforward),
        )
        .route("/api/v1/events", get(list_all_events))
        .route("/api/v1/configmaps", get(objects::list_all_configmaps))
        .route(
            "/api/v1/namespaces/{ns}/configmaps",
            get(objects::list_configmaps).post(objects::create_configmap),
        )
        .route(
            "/api/v1/namespaces/{ns}/configmaps/{name}",
            get(objects::get_configmap)
                .patch(objects::patch_configmap)
                .put(objects::update_configmap)
                .delete(objects::delete_configmap),
        )
        .route("/api/v1/secrets", get(objects::list_all_secrets))
        .route(
            "/api/v1/namespaces/{ns}/secrets",
            get(objects::list_secrets).post(objects::create_secret),
        )
        .route(
            "/api/v1/namespaces/{ns}/secrets/{name}",
            get(objects::get_secret)
                .patch(objects::patch_secret)
                .put(objects::update_secret)
                .delete(objects::delete_secret),
        )
        .route("/api/v1/namespaces/{ns}/events", get(list_namespace_events))
        .route("/api/v1/namespaces/{ns}/events/{name}", get(get_event))
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

/// `404 NotFound` for `kind` `name`, as the API server words it.
pub fn not_found(kind: &str, name: &str) -> Response {
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
            resource("namespaces", "Namespace", false, &["create", "delete", "get", "list"], &["ns"]),
            resource("pods", "Pod", true, &["create", "delete", "get", "list", "patch", "watch"], &["po"]),
            resource("pods/log", "Pod", true, &["get"], &[]),
            resource("pods/exec", "PodExecOptions", true, &["create", "get"], &[]),
            resource("pods/attach", "PodAttachOptions", true, &["create", "get"], &[]),
            resource("pods/portforward", "PodPortForwardOptions", true, &["create", "get"], &[]),
            resource("events", "Event", true, &["get", "list", "watch"], &["ev"]),
            resource("configmaps", "ConfigMap", true, &["create", "delete", "get", "list", "patch", "watch"], &["cm"]),
            resource("secrets", "Secret", true, &["create", "delete", "get", "list", "patch", "watch"], &[]),
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
            "/api/v1/namespaces/{namespace}/configmaps/{name}": patch("ConfigMap"),
            "/api/v1/namespaces/{namespace}/secrets/{name}": patch("Secret"),
        },
        "components": {"schemas": {}}
    }))
    .into_response()
}

fn kind_singular(kind: &str) -> &'static str {
    match kind {
        "Namespace" => "namespace",
        "Event" => "event",
        "ConfigMap" => "configmap",
        "Secret" => "secret",
        _ => "pod",
    }
}

/// Namespaces: those of the pods, and `default`.
fn namespaces(api: &Api) -> Vec<String> {
    crate::sync_lock(&api.namespaces).iter().cloned().collect()
}

/// The namespaces every cluster has.
pub const BUILT_IN_NAMESPACES: [&str; 4] =
    ["default", "kube-node-lease", "kube-public", "kube-system"];

fn namespace_object(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": stable_uid(name), "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// A uid that stays the same for a name.
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

async fn list_namespaces(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let names = namespaces(&api);
    if wants_table(&headers) {
        let rows: Vec<Value> = names
            .iter()
            .map(|n| {
                let object = namespace_object(n);
                json!({"cells": [n, "Active", "<unknown>"], "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"].clone()}})
            })
            .collect();
        let column = |name: &str, format: &str| json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0});
        return axum::Json(json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [column("Name", "name"), column("Status", ""), column("Age", "")],
            "rows": rows,
        }))
        .into_response();
    }
    let items: Vec<Value> = names.iter().map(|n| namespace_object(n)).collect();
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

/// `kubectl create namespace NAME`.
async fn create_namespace(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let doc = match crate::protobuf::body_json(&headers, &body) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
    if !wasipod::spec::is_dns_label(&name) {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!(
                "Namespace \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
            ),
            json!({"name": name, "kind": "Namespace"}),
        );
    }
    if !crate::sync_lock(&api.namespaces).insert(name.clone()) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("namespaces \"{name}\" already exists"),
            json!({"name": name, "kind": "namespaces"}),
        );
    }
    let object = namespace_object(&name);
    api.disk.save("namespaces", "", &name, &object);
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

/// `kubectl delete namespace NAME`: its pods get their termination
/// sequence and its ConfigMaps and Secrets go; the built-in ones stay.
async fn delete_namespace(State(api): State<Shared>, Path(ns): Path<String>) -> Response {
    if BUILT_IN_NAMESPACES.contains(&ns.as_str()) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"),
            json!({"name": ns, "kind": "namespaces"}),
        );
    }
    if !crate::sync_lock(&api.namespaces).remove(&ns) {
        return not_found("namespaces", &ns);
    }
    api.disk.remove("namespaces", "", &ns);
    api.objects.remove_namespace(&api.disk, &ns);
    let pods = api.runtime.list(Some(&ns));
    let mut object = namespace_object(&ns);
    object["status"]["phase"] = Value::String("Terminating".into());
    tokio::spawn(async move {
        for pod in pods {
            pod.delete(None).await;
        }
    });
    axum::Json(object).into_response()
}

/// A pod document as the API serves it: with `spec.nodeName`.
fn object_value(api: &Api, object: &PodObject) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("nodeName".into(), Value::String(api.node.clone()));
    }
    let key = (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    );
    if let Some(uid) = crate::sync_lock(&api.mirrors).get(&key) {
        v["metadata"]["uid"] = Value::String(uid.clone());
    }
    v
}

/// The pod as the API serves it now: its document with the version of its
/// last change.
fn pod_object(api: &Api, pod: &Pod) -> Value {
    let mut v = object_value(api, &pod.to_object());
    let rv = api
        .changes
        .version_of("pods", pod.namespace(), pod.name())
        .unwrap_or_else(|| api.changes.current());
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    v
}

/// Whether the client asked for a `Table` (as `kubectl get` does).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| first.contains("as=Table"))
}

/// `kubectl get pods`' columns, computed as kubectl's pod printer does.
fn pod_table(api: &Api, pods: &[Value], rv: u64) -> Value {
    let now = chrono::Utc::now();
    let column = |name: &str, kind: &str, format: &str, priority: u8, description: &str| json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority});
    let rows: Vec<Value> = pods
        .iter()
        .filter_map(|value| {
            let object: PodObject = serde_json::from_value(value.clone()).ok()?;
            let row = wasipod::table::PodRow::of(&object.metadata, &object.spec, &object.status, now);
            Some(json!({
                "cells": [object.metadata.name, row.ready, row.status, row.restarts, row.age, row.ip, api.node, "<none>", "<none>"],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": value["metadata"].clone(),
                },
            }))
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
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

/// The query of a list or watch.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    watch: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// A "watch list" (what `kubectl wait` uses): every object first, then
    /// a bookmark marking the end of the initial events.
    pub send_initial_events: Option<bool>,
}

impl ListQuery {
    /// `watch=1` or `watch=true`.
    pub fn watching(&self) -> bool {
        matches!(self.watch.as_deref(), Some("1" | "true"))
    }
}

/// Which pods a list or watch covers: a namespace (or all) and selectors.
struct PodFilter {
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl PodFilter {
    /// The filter of a query; a selector that does not parse is the
    /// error message.
    fn new(namespace: Option<String>, q: &ListQuery) -> Result<Self, String> {
        Ok(Self {
            namespace,
            labels: Selector::parse(q.label_selector.as_deref())?,
            fields: Selector::parse(q.field_selector.as_deref())?,
        })
    }

    fn matches(&self, pod: &Value) -> bool {
        let meta = &pod["metadata"];
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| meta["namespace"].as_str() != Some(ns))
        {
            return false;
        }
        let text = |v: &Value| v.as_str().map(str::to_string);
        self.labels.matches(|k| text(&meta["labels"][k]))
            && self.fields.matches(|k| match k {
                "metadata.name" => text(&meta["name"]),
                "metadata.namespace" => text(&meta["namespace"]),
                "spec.nodeName" => text(&pod["spec"]["nodeName"]),
                "status.phase" => text(&pod["status"]["phase"]),
                "spec.restartPolicy" => text(&pod["spec"]["restartPolicy"]),
                _ => None,
            })
    }
}

async fn list_all_pods(
    State(api): State<Shared>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list_or_watch(api, None, q, headers).await
}

async fn list_pods(
    State(api): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list_or_watch(api, Some(ns), q, headers).await
}

/// A list (`PodList`, or a `Table`), or with `watch` a stream of watch
/// events.
async fn list_or_watch(
    api: Shared,
    namespace: Option<String>,
    q: ListQuery,
    headers: HeaderMap,
) -> Response {
    let filter = match PodFilter::new(namespace.clone(), &q) {
        Ok(f) => f,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})),
    };
    if q.watching() {
        return watch_pods(api, filter, q, wants_table(&headers));
    }
    let rv = api.changes.current();
    let pods: Vec<Value> = api
        .runtime
        .list(namespace.as_deref())
        .iter()
        .map(|p| pod_object(&api, p))
        .filter(|p| filter.matches(p))
        .collect();
    if wants_table(&headers) {
        return axum::Json(pod_table(&api, &pods, rv)).into_response();
    }
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": pods}))
        .into_response()
}

/// A watch of pods (see [`crate::watch`]).
fn watch_pods(api: Shared, filter: PodFilter, q: ListQuery, table: bool) -> Response {
    let present: Vec<Value> = api
        .runtime
        .list(filter.namespace.as_deref())
        .iter()
        .map(|p| pod_object(&api, p))
        .filter(|p| filter.matches(p))
        .collect();
    let table_api = api.clone();
    crate::watch::serve(
        &api.changes,
        crate::watch::Feed {
            resource: "pods",
            kind: "Pod",
            present,
            matches: Box::new(move |o| filter.matches(o)),
            table: table.then(|| -> Box<crate::watch::ToTable> {
                Box::new(move |o, rv| pod_table(&table_api, std::slice::from_ref(o), rv))
            }),
        },
        &q,
    )
}

async fn get_pod(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match api.runtime.get(&ns, &name) {
        Some(pod) if wants_table(&headers) => axum::Json(pod_table(
            &api,
            &[pod_object(&api, &pod)],
            api.changes.current(),
        ))
        .into_response(),
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
    if !namespaces(&api).contains(&ns) {
        return not_found("namespaces", &ns);
    }
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
    // The namespace's ConfigMaps and Secrets go along, as documents of the
    // same file would: the validation resolves the pod's references.
    let text = format!("{doc}\n{}", api.objects.documents(&ns));
    let spec = match PodSpec::from_yaml(&text, &api.base_dir) {
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

/// Kubernetes' message for a pod update that changes its spec.
const POD_SPEC_FORBIDDEN: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `PATCH .../pods/{name}` (`kubectl label`, `annotate`, `patch`,
/// `apply`): see [`change_pod`].
async fn patch_pod(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    let current = pod_object(&api, &pod);
    match objects::patched(&headers, &current, &body) {
        Ok(patched) => change_pod(&api, &pod, current, patched),
        Err(r) => *r,
    }
}

/// `PUT .../pods/{name}` (`kubectl replace`): see [`change_pod`].
async fn update_pod(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(pod) = api.runtime.get(&ns, &name) else {
        return not_found("pods", &name);
    };
    let mut new = match crate::protobuf::body_json(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let current = pod_object(&api, &pod);
    for field in ["uid", "creationTimestamp", "resourceVersion", "namespace"] {
        if new["metadata"][field].is_null() {
            new["metadata"][field] = current["metadata"][field].clone();
        }
    }
    // The spec as the server defaults it (what a create would show), so
    // that only real changes count; the status is not the client's.
    let mut doc = new.clone();
    if let Some(o) = doc.as_object_mut() {
        o.remove("status");
    }
    if let Some(spec) = doc["spec"].as_object_mut() {
        spec.remove("nodeName");
    }
    let text = format!("{doc}\n{}", api.objects.documents(&ns));
    let defaulted = match PodSpec::from_yaml(&text, &api.base_dir) {
        Ok(spec) => spec,
        Err(e) => return invalid(&name, &e),
    };
    new["spec"] = serde_json::to_value(&defaulted.wire().spec).unwrap_or(Value::Null);
    new["spec"]["nodeName"] = Value::String(api.node.clone());
    new["status"] = current["status"].clone();
    change_pod(&api, &pod, current, new)
}

/// A pod changed by a patch or an update: labels and annotations change;
/// any other change is refused (a spec change with Kubernetes' own
/// message; wasipod also keeps a running pod's images and deadline).
fn change_pod(api: &Api, pod: &Pod, current: Value, patched: Value) -> Response {
    let name = pod.name().to_string();
    let invalid = |field: &str, message: &str| {
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("Pod \"{name}\" is invalid: {field}: {message}"),
            json!({"name": name, "kind": "Pod", "causes": [
                {"reason": "FieldValueForbidden", "message": message, "field": field}
            ]}),
        )
    };
    if patched["spec"] != current["spec"] {
        return invalid("spec", POD_SPEC_FORBIDDEN);
    }
    let without_labels = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in ["labels", "annotations", "resourceVersion"] {
                meta.remove(field);
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
        }
        v
    };
    if without_labels(&patched) != without_labels(&current) {
        return invalid(
            "metadata",
            "Forbidden: only labels and annotations of a pod's metadata may change",
        );
    }
    let map = |field: &str| -> Option<std::collections::BTreeMap<String, String>> {
        match &patched["metadata"][field] {
            Value::Null => Some(Default::default()),
            v => serde_json::from_value(v.clone()).ok(),
        }
    };
    let (Some(labels), Some(annotations)) = (map("labels"), map("annotations")) else {
        return invalid(
            "metadata",
            "Invalid value: labels and annotations must be maps of strings",
        );
    };
    pod.set_labels_and_annotations(labels, annotations);
    axum::Json(pod_object(api, pod)).into_response()
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
    // A mirror pod goes and comes back with a new uid; its static pod runs
    // on, as under a kubelet.
    let mirror_uid = crate::sync_lock(&api.mirrors)
        .get(&(ns.clone(), name.clone()))
        .cloned();
    if mirror_uid.is_some() {
        let old = pod_object(&api, &pod);
        api.changes.record("pods", "DELETED", old.clone());
        crate::sync_lock(&api.mirrors)
            .insert((ns.clone(), name.clone()), uuid::Uuid::new_v4().to_string());
        api.changes
            .record("pods", "ADDED", object_value(&api, &pod.to_object()));
        return axum::Json(old).into_response();
    }
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
    follow: Option<bool>,
    previous: Option<bool>,
    tail_lines: Option<usize>,
    since_seconds: Option<i64>,
    timestamps: Option<bool>,
    limit_bytes: Option<usize>,
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
    options.previous = q.previous.unwrap_or(false);
    options.tail_lines = q.tail_lines;
    options.limit_bytes = q.limit_bytes;
    options.timestamps = q.timestamps.unwrap_or(false);
    options.follow = q.follow.unwrap_or(false);
    options.since = q
        .since_seconds
        .map(|s| chrono::Utc::now() - chrono::TimeDelta::seconds(s.max(0)));
    match pod.stream_logs(&options) {
        Ok(rx) => {
            let stream = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                |chunk| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(chunk)),
            );
            (
                [(header::CONTENT_TYPE, "text/plain")],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Err(e) => {
            let (code, reason) = match e.kind() {
                ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
                _ => (StatusCode::BAD_REQUEST, "BadRequest"),
            };
            status(code, reason, e.to_string(), json!({}))
        }
    }
}

/// A pod's events as `v1` Events (the kubelet's: source, counts, times).
fn event_objects(api: &Api, pod: &Pod) -> Vec<Value> {
    let who = (pod.namespace(), pod.name(), pod.uid());
    pod.events()
        .iter()
        .enumerate()
        .map(|(i, e)| event_object(api, who, i, e))
        .collect()
}

/// Event `index` of pod (namespace, name, uid) as a `v1 Event`.
fn event_object(
    api: &Api,
    (namespace, name, uid): (&str, &str, &str),
    index: usize,
    e: &wasipod::Event,
) -> Value {
    let time = e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut involved = json!({
        "kind": "Pod", "namespace": namespace, "name": name, "uid": uid, "apiVersion": "v1",
    });
    // `pod`, or the container's field path (`spec.containers{app}`).
    if e.object != "pod" {
        involved["fieldPath"] = Value::String(e.object.clone());
    }
    json!({
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": format!("{name}.{:x}", (uid.len() as u64) << 32 | index as u64),
            "namespace": namespace,
            "uid": format!("{uid}-{index}"),
            "resourceVersion": api.changes.current().to_string(),
            "creationTimestamp": time,
        },
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.message,
        "source": {"component": "kubelet", "host": api.node},
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
        "type": serde_json::to_value(e.type_).unwrap_or(Value::Null),
        "eventTime": null,
        "reportingComponent": "kubelet",
        "reportingInstance": api.node,
    })
}

/// Feeds the pods' events into [`Api::changes`], for watches of events
/// (started before serving).
pub fn follow_events(api: &Shared) {
    let mut rx = api.runtime.watch_events();
    let api = api.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let value =
                        event_object(&api, (&e.namespace, &e.name, &e.uid), e.index, &e.event);
                    api.changes.record("events", "ADDED", value);
                }
                // Events missed by watchers stay in the list.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// `kubectl get events`' columns, as the API server prints them.
fn event_table(events: &[Value], rv: u64) -> Value {
    let now = chrono::Utc::now();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let since = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or(""))
            .map(|t| wasipod::table::human_duration(now - t.with_timezone(&chrono::Utc)))
            .unwrap_or_else(|_| "<unknown>".into())
    };
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            let involved = &e["involvedObject"];
            json!({
                "cells": [
                    since(&e["lastTimestamp"]),
                    e["type"],
                    e["reason"],
                    format!("{}/{}", text(&involved["kind"]).to_lowercase(), text(&involved["name"])),
                    text(&involved["fieldPath"]),
                    format!("{}, {}", text(&e["source"]["component"]), text(&e["source"]["host"])),
                    e["message"],
                    since(&e["firstTimestamp"]),
                    e["count"],
                    e["metadata"]["name"],
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": e["metadata"].clone(),
                },
            })
        })
        .collect();
    let column = |name: &str, kind: &str, format: &str, priority: u8| json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority});
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            column("Last Seen", "string", "", 0),
            column("Type", "string", "", 0),
            column("Reason", "string", "", 0),
            column("Object", "string", "", 0),
            column("Subobject", "string", "", 1),
            column("Source", "string", "", 1),
            column("Message", "string", "", 0),
            column("First Seen", "string", "", 1),
            column("Count", "integer", "", 1),
            column("Name", "string", "name", 1),
        ],
        "rows": rows,
    })
}

async fn list_all_events(
    State(api): State<Shared>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list_events(api, None, q, headers)
}

async fn list_namespace_events(
    State(api): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list_events(api, Some(ns), q, headers)
}

/// Whether an event matches a namespace and a field selector
/// (`involvedObject.*`, `type`, `reason`, `metadata.*`).
fn event_matches(namespace: Option<&str>, fields: &Selector, e: &Value) -> bool {
    let text = |v: &Value| v.as_str().map(str::to_string);
    namespace.is_none_or(|ns| e["metadata"]["namespace"].as_str() == Some(ns))
        && fields.matches(|k| match k {
            "involvedObject.kind" => text(&e["involvedObject"]["kind"]),
            "involvedObject.name" => text(&e["involvedObject"]["name"]),
            "involvedObject.namespace" => text(&e["involvedObject"]["namespace"]),
            "involvedObject.uid" => text(&e["involvedObject"]["uid"]),
            "involvedObject.fieldPath" => text(&e["involvedObject"]["fieldPath"]),
            "metadata.namespace" => text(&e["metadata"]["namespace"]),
            "metadata.name" => text(&e["metadata"]["name"]),
            "type" => text(&e["type"]),
            "reason" => text(&e["reason"]),
            "source" => Some("kubelet".into()),
            _ => None,
        })
}

/// Events (an `EventList`, or a `Table`), or with `watch` the events as
/// they happen.
fn list_events(
    api: Shared,
    namespace: Option<String>,
    q: ListQuery,
    headers: HeaderMap,
) -> Response {
    let fields = match Selector::parse(q.field_selector.as_deref()) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})),
    };
    let items: Vec<Value> = api
        .runtime
        .list(namespace.as_deref())
        .iter()
        .flat_map(|p| event_objects(&api, p))
        .filter(|e| event_matches(namespace.as_deref(), &fields, e))
        .collect();
    if q.watching() {
        let table = wants_table(&headers);
        return crate::watch::serve(
            &api.changes,
            crate::watch::Feed {
                resource: "events",
                kind: "Event",
                present: items,
                matches: Box::new(move |e| event_matches(namespace.as_deref(), &fields, e)),
                table: table.then(|| -> Box<crate::watch::ToTable> {
                    Box::new(|e, rv| event_table(std::slice::from_ref(e), rv))
                }),
            },
            &q,
        );
    }
    if wants_table(&headers) {
        return axum::Json(event_table(&items, api.changes.current())).into_response();
    }
    axum::Json(json!({
        "kind": "EventList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": api.changes.current().to_string()},
        "items": items,
    }))
    .into_response()
}

/// `GET .../events/{name}`.
async fn get_event(
    State(api): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = api
        .runtime
        .list(Some(&ns))
        .iter()
        .flat_map(|p| event_objects(&api, p))
        .find(|e| e["metadata"]["name"].as_str() == Some(name.as_str()));
    match found {
        Some(e) if wants_table(&headers) => {
            axum::Json(event_table(&[e], api.changes.current())).into_response()
        }
        Some(e) => axum::Json(e).into_response(),
        None => not_found("events", &name),
    }
}
