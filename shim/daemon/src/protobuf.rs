//! The Kubernetes protobuf encoding, as far as kubectl's typed calls send
//! it (`kubectl create namespace|configmap|secret`): the `k8s\0` envelope
//! (a `runtime.Unknown` with the type and the raw message) and the fields
//! of a Namespace, ConfigMap and Secret the daemon reads, declared with
//! prost (the field numbers of Kubernetes' `generated.proto`). Everything
//! is answered in JSON.

use serde_json::{Value, json};

/// `k8s.io.apimachinery.pkg.runtime.Unknown`.
#[derive(Clone, PartialEq, prost::Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

/// `k8s.io.apimachinery.pkg.runtime.TypeMeta`.
#[derive(Clone, PartialEq, prost::Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

/// The first field of every object: its `ObjectMeta`.
#[derive(Clone, PartialEq, prost::Message)]
struct Object {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

/// `k8s.io.api.core.v1.ConfigMap`.
#[derive(Clone, PartialEq, prost::Message)]
struct ConfigMap {
    #[prost(map = "string, string", tag = "2")]
    data: std::collections::HashMap<String, String>,
    #[prost(map = "string, bytes", tag = "3")]
    binary_data: std::collections::HashMap<String, Vec<u8>>,
}

/// `k8s.io.api.core.v1.Secret`.
#[derive(Clone, PartialEq, prost::Message)]
struct Secret {
    #[prost(map = "string, bytes", tag = "2")]
    data: std::collections::HashMap<String, Vec<u8>>,
    #[prost(string, tag = "3")]
    type_: String,
    #[prost(map = "string, string", tag = "4")]
    string_data: std::collections::HashMap<String, String>,
}

fn base64_map(map: std::collections::HashMap<String, Vec<u8>>) -> Value {
    use base64::Engine;
    let encoded: std::collections::BTreeMap<String, String> = map
        .into_iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    json!(encoded)
}

/// `k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta` (the fields read).
#[derive(Clone, PartialEq, prost::Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(map = "string, string", tag = "11")]
    labels: std::collections::HashMap<String, String>,
    #[prost(map = "string, string", tag = "12")]
    annotations: std::collections::HashMap<String, String>,
}

/// The media type of the encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The kind, apiVersion and metadata of a protobuf-encoded object, as the
/// JSON document the handlers read; an error names what is wrong.
pub fn decode_object(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("the protobuf body lacks the k8s envelope")?;
    let unknown = <Unknown as prost::Message>::decode(inner).map_err(|e| e.to_string())?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let object =
        <Object as prost::Message>::decode(unknown.raw.as_slice()).map_err(|e| e.to_string())?;
    let meta = object.metadata.unwrap_or_default();
    let mut metadata = json!({"name": meta.name});
    if !meta.namespace.is_empty() {
        metadata["namespace"] = Value::String(meta.namespace);
    }
    if !meta.labels.is_empty() {
        metadata["labels"] = json!(meta.labels);
    }
    if !meta.annotations.is_empty() {
        metadata["annotations"] = json!(meta.annotations);
    }
    let mut doc =
        json!({"apiVersion": type_meta.api_version, "kind": type_meta.kind, "metadata": metadata});
    match type_meta.kind.as_str() {
        "ConfigMap" => {
            let cm = <ConfigMap as prost::Message>::decode(unknown.raw.as_slice())
                .map_err(|e| e.to_string())?;
            doc["data"] = json!(cm.data);
            if !cm.binary_data.is_empty() {
                doc["binaryData"] = base64_map(cm.binary_data);
            }
        }
        "Secret" => {
            let secret = <Secret as prost::Message>::decode(unknown.raw.as_slice())
                .map_err(|e| e.to_string())?;
            doc["data"] = base64_map(secret.data);
            if !secret.type_.is_empty() {
                doc["type"] = Value::String(secret.type_);
            }
            if !secret.string_data.is_empty() {
                doc["stringData"] = json!(secret.string_data);
            }
        }
        _ => {}
    }
    Ok(doc)
}

/// A request body as JSON: decoded from protobuf when its content type
/// says so. A body that is neither is the API server's `400 BadRequest`.
pub fn body_json(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Value, Box<axum::response::Response>> {
    let protobuf = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(MEDIA_TYPE));
    let doc = if protobuf {
        decode_object(body)
    } else {
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
    };
    doc.map_err(|e| {
        Box::new(crate::api::status(
            axum::http::StatusCode::BAD_REQUEST,
            "BadRequest",
            e,
            serde_json::json!({}),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_from_kubectl_is_read() {
        // What kubectl 1.37 sends for `kubectl create namespace team`.
        let body = b"k8s\0\n\x0f\n\x02v1\x12\tNamespace\x12\x1c\n\x14\n\x04team\x12\0\x1a\0\"\0*\x002\08\0B\0\x12\0\x1a\x02\n\0\x1a\0\"\0";
        let doc = decode_object(body).unwrap();
        assert_eq!(
            doc,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        );
        assert!(decode_object(b"{}").is_err());
    }
}
