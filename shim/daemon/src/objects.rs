//! ConfigMaps and Secrets: stored as the API server returns them (uid,
//! creationTimestamp, resourceVersion; a Secret's `stringData` folded into
//! base64 `data`), listed as `kubectl get` prints them, and handed to the
//! manifest validation when a pod of their namespace refers to them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::api::{Api, ListQuery, status, wants_table};
use crate::changes::Selector;

/// The kinds stored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `v1 ConfigMap`.
    ConfigMap,
    /// `v1 Secret`.
    Secret,
}

impl Kind {
    /// The resource name in URLs.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
}

/// The stored objects, by (kind, namespace, name).
#[derive(Default)]
pub struct Objects {
    all: Mutex<BTreeMap<(Kind, String, String), Value>>,
}

use crate::sync_lock as lock;

impl Objects {
    /// Every ConfigMap and Secret of a namespace, as YAML documents (what
    /// a manifest file beside the pod would hold).
    pub fn documents(&self, namespace: &str) -> String {
        lock(&self.all)
            .iter()
            .filter(|((_, ns, _), _)| ns == namespace)
            .map(|(_, v)| format!("---\n{v}\n"))
            .collect()
    }

    /// Removes every object of a namespace (from `disk` too).
    pub fn remove_namespace(&self, disk: &crate::persist::Disk, namespace: &str) {
        lock(&self.all).retain(|(kind, ns, name), _| {
            let keep = ns != namespace;
            if !keep {
                disk.remove(kind.resource(), ns, name);
            }
            keep
        });
    }

    /// Takes back the objects stored on `disk` (at start).
    pub fn load(&self, disk: &crate::persist::Disk) {
        let mut all = lock(&self.all);
        for kind in [Kind::ConfigMap, Kind::Secret] {
            for v in disk.load(kind.resource()) {
                let meta = &v["metadata"];
                if let (Some(ns), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str())
                {
                    all.insert((kind, ns.to_string(), name.to_string()), v.clone());
                }
            }
        }
    }
}

type Shared = Arc<Api>;

fn not_found(kind: Kind, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", kind.resource()),
        json!({"name": name, "kind": kind.resource()}),
    )
}

/// Checks and completes a new object: kind, name, namespace, data; a
/// Secret's `stringData` becomes base64 `data`.
fn admit(kind: Kind, ns: &str, mut doc: Value) -> Result<Value, Box<Response>> {
    let invalid = |field: &str, message: &str| {
        Box::new(status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} is invalid: {field}: {message}", kind.kind()),
            json!({"kind": kind.kind(), "causes": [{"reason": "FieldValueInvalid", "field": field, "message": message}]}),
        ))
    };
    if doc["kind"].as_str() != Some(kind.kind()) || doc["apiVersion"].as_str() != Some("v1") {
        return Err(invalid(
            "kind",
            &format!("must be {} in apiVersion v1", kind.kind()),
        ));
    }
    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
    if !wasipod::spec::is_dns_subdomain(&name) {
        return Err(invalid(
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ));
    }
    match doc["metadata"]["namespace"].as_str() {
        Some(given) if given != ns => {
            return Err(Box::new(status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
                json!({}),
            )));
        }
        _ => {}
    }
    for field in ["data", "binaryData", "stringData"] {
        if let Some(map) = doc.get(field).filter(|v| !v.is_null()) {
            let ok = map
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(invalid(field, "must be a map of strings"));
            }
        }
    }
    if kind == Kind::Secret {
        fold_string_data(&mut doc);
    }
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::String(ns.to_string()));
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert(
            "creationTimestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
    }
    Ok(doc)
}

/// A Secret's `stringData` written into `data` (base64), as the API server
/// does; `type` defaults to `Opaque`.
fn fold_string_data(doc: &mut Value) {
    if let Some(Value::Object(plain)) = doc.get("stringData").cloned() {
        let data = doc
            .as_object_mut()
            .map(|o| o.entry("data").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        if let Some(data) = data {
            for (k, v) in plain {
                let text = v.as_str().unwrap_or("");
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    if let Some(o) = doc.as_object_mut() {
        o.remove("stringData");
        o.entry("type")
            .or_insert_with(|| Value::String("Opaque".into()));
    }
}

/// `current` with a patch applied, by the patch's content type: a JSON
/// merge patch (RFC 7386) or a strategic merge patch (what it amounts to
/// for maps, the fields that may change here), or a JSON patch (RFC 6902).
/// Server-side apply is not served (kubectl's default, client-side apply,
/// sends strategic merge patches).
pub fn patched(headers: &HeaderMap, current: &Value, body: &[u8]) -> Result<Value, Box<Response>> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bad = |e: String| Box::new(status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})));
    let mut patched = current.clone();
    if content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
    {
        let patch: Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("the patch is not JSON: {e}")))?;
        json_patch::merge(&mut patched, &patch);
    } else if content_type.starts_with("application/json-patch+json") {
        let patch: json_patch::Patch = serde_json::from_slice(body)
            .map_err(|e| bad(format!("the patch is not a JSON patch: {e}")))?;
        json_patch::patch(&mut patched, &patch).map_err(|e| {
            Box::new(status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("the JSON patch does not apply: {e}"),
                json!({}),
            ))
        })?;
    } else {
        return Err(Box::new(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?}; server-side apply is not served)"
            ),
            json!({}),
        )));
    }
    Ok(patched)
}

/// `PATCH .../{name}` (`kubectl apply`, `label`, `patch`): the patched
/// object, with a new version.
pub async fn patch(
    api: Shared,
    kind: Kind,
    ns: String,
    name: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let current = lock(&api.objects.all)
        .get(&(kind, ns.clone(), name.clone()))
        .cloned();
    let Some(current) = current else {
        return not_found(kind, &name);
    };
    match patched(&headers, &current, &body) {
        Ok(new) => replace(&api, kind, ns, name, new),
        Err(r) => *r,
    }
}

/// `PUT .../{name}` (`kubectl replace`): the object as sent, with a new
/// version.
pub async fn update(
    api: Shared,
    kind: Kind,
    ns: String,
    name: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let new = match crate::protobuf::body_json(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if new["metadata"]["name"].as_str() != Some(name.as_str()) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the name of the object does not match the name on the URL",
            json!({}),
        );
    }
    replace(&api, kind, ns, name, new)
}

/// Stores `new` in place of the object (its identity fields kept, a
/// Secret's `stringData` folded) and reports the change.
fn replace(api: &Api, kind: Kind, ns: String, name: String, mut new: Value) -> Response {
    let key = (kind, ns, name.clone());
    let mut all = lock(&api.objects.all);
    let Some(current) = all.get(&key).cloned() else {
        return not_found(kind, &name);
    };
    // Identity fields stay the server's.
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "resourceVersion",
    ] {
        new["metadata"][field] = current["metadata"][field].clone();
    }
    if kind == Kind::Secret {
        fold_string_data(&mut new);
    }
    if new == current {
        return axum::Json(current).into_response();
    }
    let rv = api.changes.record(kind.resource(), "MODIFIED", new.clone());
    new["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    api.disk.save(kind.resource(), &key.1, &key.2, &new);
    all.insert(key, new.clone());
    axum::Json(new).into_response()
}

/// `POST /api/v1/namespaces/{ns}/{configmaps,secrets}`.
pub async fn create(
    api: Shared,
    kind: Kind,
    ns: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let doc = match crate::protobuf::body_json(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !crate::sync_lock(&api.namespaces).contains(&ns) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            json!({"name": ns, "kind": "namespaces"}),
        );
    }
    let doc = match admit(kind, &ns, doc) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
    let key = (kind, ns, name.clone());
    let mut all = lock(&api.objects.all);
    if all.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.resource()),
            json!({"name": name, "kind": kind.resource()}),
        );
    }
    let rv = api.changes.record(kind.resource(), "ADDED", doc.clone());
    let mut stored = doc;
    stored["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    api.disk.save(kind.resource(), &key.1, &key.2, &stored);
    all.insert(key, stored.clone());
    (StatusCode::CREATED, axum::Json(stored)).into_response()
}

/// `GET .../{name}`.
pub async fn get(
    api: Shared,
    kind: Kind,
    ns: String,
    name: String,
    headers: HeaderMap,
) -> Response {
    let found = lock(&api.objects.all)
        .get(&(kind, ns, name.clone()))
        .cloned();
    match found {
        Some(v) if wants_table(&headers) => {
            axum::Json(table(kind, &[v], api.changes.current())).into_response()
        }
        Some(v) => axum::Json(v).into_response(),
        None => not_found(kind, &name),
    }
}

/// `DELETE .../{name}`: the object as it was.
pub async fn delete(api: Shared, kind: Kind, ns: String, name: String) -> Response {
    let removed = lock(&api.objects.all).remove(&(kind, ns.clone(), name.clone()));
    match removed {
        Some(v) => {
            api.disk.remove(kind.resource(), &ns, &name);
            api.changes.record(kind.resource(), "DELETED", v.clone());
            axum::Json(v).into_response()
        }
        None => not_found(kind, &name),
    }
}

/// A list (or `Table`) of one namespace's objects, or every namespace's.
pub async fn list(
    api: Shared,
    kind: Kind,
    ns: Option<String>,
    q: ListQuery,
    headers: HeaderMap,
) -> Response {
    let labels = match Selector::parse(q.label_selector.as_deref()) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})),
    };
    let fields = match Selector::parse(q.field_selector.as_deref()) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})),
    };
    let rv = api.changes.current();
    let matches = move |v: &Value| {
        let text = |v: &Value| v.as_str().map(str::to_string);
        ns.as_deref()
            .is_none_or(|ns| v["metadata"]["namespace"].as_str() == Some(ns))
            && labels.matches(|k| text(&v["metadata"]["labels"][k]))
            && fields.matches(|k| match k {
                "metadata.name" => text(&v["metadata"]["name"]),
                "metadata.namespace" => text(&v["metadata"]["namespace"]),
                "type" => text(&v["type"]),
                _ => None,
            })
    };
    let items: Vec<Value> = lock(&api.objects.all)
        .iter()
        .filter(|((k, _, _), v)| *k == kind && matches(v))
        .map(|(_, v)| v.clone())
        .collect();
    if q.watching() {
        let table = wants_table(&headers);
        return crate::watch::serve(
            &api.changes,
            crate::watch::Feed {
                resource: kind.resource(),
                kind: kind.kind(),
                present: items,
                matches: Box::new(matches),
                table: table.then(|| -> Box<crate::watch::ToTable> {
                    Box::new(move |v, rv| self::table(kind, std::slice::from_ref(v), rv))
                }),
            },
            &q,
        );
    }
    if wants_table(&headers) {
        return axum::Json(table(kind, &items, rv)).into_response();
    }
    axum::Json(json!({
        "kind": format!("{}List", kind.kind()),
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    }))
    .into_response()
}

/// kubectl's columns: NAME, DATA, AGE for ConfigMaps; NAME, TYPE, DATA,
/// AGE for Secrets.
fn table(kind: Kind, items: &[Value], rv: u64) -> Value {
    let now = chrono::Utc::now();
    let column = |name: &str, format: &str| json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0});
    let mut columns = vec![column("Name", "name")];
    if kind == Kind::Secret {
        columns.push(column("Type", ""));
    }
    columns.push(column("Data", ""));
    columns.push(column("Age", ""));
    let rows: Vec<Value> = items
        .iter()
        .map(|v| {
            let count = ["data", "binaryData"]
                .iter()
                .filter_map(|f| v[*f].as_object().map(|m| m.len()))
                .sum::<usize>();
            let age = v["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| wasipod::table::human_duration(now - t.with_timezone(&chrono::Utc)))
                .unwrap_or_else(|| "<unknown>".into());
            let mut cells = vec![v["metadata"]["name"].clone()];
            if kind == Kind::Secret {
                cells.push(v["type"].clone());
            }
            cells.push(json!(count));
            cells.push(Value::String(age));
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"].clone()},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

macro_rules! handlers {
    ($kind:expr, $create:ident, $get:ident, $patch:ident, $update:ident, $delete:ident, $list:ident, $list_all:ident) => {
        /// Create, in the path's namespace.
        pub async fn $create(
            State(api): State<Shared>,
            Path(ns): Path<String>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> Response {
            create(api, $kind, ns, headers, body).await
        }
        /// Get one.
        pub async fn $get(
            State(api): State<Shared>,
            Path((ns, name)): Path<(String, String)>,
            headers: HeaderMap,
        ) -> Response {
            get(api, $kind, ns, name, headers).await
        }
        /// Patch one.
        pub async fn $patch(
            State(api): State<Shared>,
            Path((ns, name)): Path<(String, String)>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> Response {
            patch(api, $kind, ns, name, headers, body).await
        }
        /// Replace one.
        pub async fn $update(
            State(api): State<Shared>,
            Path((ns, name)): Path<(String, String)>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> Response {
            update(api, $kind, ns, name, headers, body).await
        }
        /// Delete one.
        pub async fn $delete(
            State(api): State<Shared>,
            Path((ns, name)): Path<(String, String)>,
        ) -> Response {
            delete(api, $kind, ns, name).await
        }
        /// List a namespace's.
        pub async fn $list(
            State(api): State<Shared>,
            Path(ns): Path<String>,
            Query(q): Query<ListQuery>,
            headers: HeaderMap,
        ) -> Response {
            list(api, $kind, Some(ns), q, headers).await
        }
        /// List every namespace's.
        pub async fn $list_all(
            State(api): State<Shared>,
            Query(q): Query<ListQuery>,
            headers: HeaderMap,
        ) -> Response {
            list(api, $kind, None, q, headers).await
        }
    };
}

handlers!(
    Kind::ConfigMap,
    create_configmap,
    get_configmap,
    patch_configmap,
    update_configmap,
    delete_configmap,
    list_configmaps,
    list_all_configmaps
);
handlers!(
    Kind::Secret,
    create_secret,
    get_secret,
    patch_secret,
    update_secret,
    delete_secret,
    list_secrets,
    list_all_secrets
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_by_content_type() {
        let current = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "y"}}});
        let mut headers = HeaderMap::new();
        let kind = |h: &mut HeaderMap, t: &'static str| {
            h.insert(axum::http::header::CONTENT_TYPE, t.parse().unwrap());
        };
        kind(&mut headers, "application/strategic-merge-patch+json");
        let merged = patched(
            &headers,
            &current,
            br#"{"data": {"b": null, "c": "3"}, "metadata": {"labels": {"x": "z"}}}"#,
        )
        .unwrap();
        assert_eq!(
            merged,
            json!({"data": {"a": "1", "c": "3"}, "metadata": {"labels": {"x": "z"}}})
        );
        kind(&mut headers, "application/json-patch+json");
        let patched_json = patched(
            &headers,
            &current,
            br#"[{"op": "replace", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/b"}]"#,
        )
        .unwrap();
        assert_eq!(patched_json["data"], json!({"a": "9"}));
        assert!(
            patched(
                &headers,
                &current,
                br#"[{"op": "remove", "path": "/nope"}]"#
            )
            .is_err()
        );
        kind(&mut headers, "application/apply-patch+yaml");
        let refused = patched(&headers, &current, b"{}").unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn a_secrets_string_data_is_folded_into_base64_data() {
        let mut doc = json!({"stringData": {"word": "swordfish"}, "data": {"old": "eA=="}});
        fold_string_data(&mut doc);
        assert_eq!(
            doc,
            json!({"data": {"old": "eA==", "word": "c3dvcmRmaXNo"}, "type": "Opaque"})
        );
    }
}
