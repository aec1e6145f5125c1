//! Field paths and field errors, in the style of Kubernetes'
//! `apimachinery/pkg/util/validation/field`: a validator step takes the
//! [`FieldPath`] of what it checks and reports problems with the
//! constructors below, whose wording is Kubernetes' own
//! (`spec.containers[1].name: Duplicate value: "web"`).

use std::fmt;

use crate::error::FieldError;

/// The path of a field, e.g. `spec.containers[0].volumeMounts[1].name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A root path (`spec`, `metadata`).
    pub fn new(root: &str) -> Self {
        Self(root.to_string())
    }

    /// A field of this one: `spec` → `spec.volumes`.
    pub fn child(&self, name: &str) -> Self {
        Self(format!("{}.{name}", self.0))
    }

    /// An element of a list: `spec.volumes` → `spec.volumes[2]`.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// An entry of a map: `resources.limits` → `resources.limits[memory]`.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&FieldPath> for String {
    fn from(p: &FieldPath) -> String {
        p.0.clone()
    }
}

impl From<FieldPath> for String {
    fn from(p: FieldPath) -> String {
        p.0
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// `Required value[: detail]`: a field that must be set is not.
pub fn required(path: impl Into<String>, detail: &str) -> FieldError {
    FieldError::new(path, with_detail("Required value".into(), detail))
}

/// `Invalid value: <value>: detail`: the value breaks a rule.
pub fn invalid(path: impl Into<String>, value: &dyn fmt::Debug, detail: &str) -> FieldError {
    FieldError::new(
        path,
        with_detail(format!("Invalid value: {value:?}"), detail),
    )
}

/// `Forbidden: detail`: the field may not be used here.
pub fn forbidden(path: impl Into<String>, detail: &str) -> FieldError {
    FieldError::new(path, format!("Forbidden: {detail}"))
}

/// `Duplicate value: <value>`: the value is already used by a sibling.
pub fn duplicate(path: impl Into<String>, value: &dyn fmt::Debug) -> FieldError {
    FieldError::new(path, format!("Duplicate value: {value:?}"))
}

/// `Not found: <value>`: the value names something that does not exist.
pub fn not_found(path: impl Into<String>, value: &dyn fmt::Debug) -> FieldError {
    FieldError::new(path, format!("Not found: {value:?}"))
}

/// `Unsupported value: <value>: supported values: "a", "b"`.
pub fn not_supported(
    path: impl Into<String>,
    value: &dyn fmt::Debug,
    valid: &[&str],
) -> FieldError {
    let valid: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
    FieldError::new(
        path,
        format!(
            "Unsupported value: {value:?}: supported values: {}",
            valid.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_messages_read_like_kubernetes() {
        let p = FieldPath::new("spec")
            .child("containers")
            .index(1)
            .child("resources")
            .child("limits")
            .key("memory");
        assert_eq!(p.as_str(), "spec.containers[1].resources.limits[memory]");
        let name = FieldPath::new("spec")
            .child("containers")
            .index(1)
            .child("name");
        assert_eq!(
            duplicate(&name, &"web").to_string(),
            "spec.containers[1].name: Duplicate value: \"web\""
        );
        assert_eq!(required(&name, "").message, "Required value");
        assert_eq!(
            invalid(&name, &"Web", "must be lowercase").message,
            "Invalid value: \"Web\": must be lowercase"
        );
        assert_eq!(
            not_supported(&name, &"Sometimes", &["Always", "Never"]).message,
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(forbidden(&name, "no").message, "Forbidden: no");
        assert_eq!(not_found(&name, &"data").message, "Not found: \"data\"");
    }
}
