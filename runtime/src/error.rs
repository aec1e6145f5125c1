//! Typed errors of the library. Every message names the file, field or
//! object it is about.

use std::fmt;
use std::path::PathBuf;

/// One problem with one field, in Kubernetes' wording:
/// `spec.containers[1].name: Duplicate value: "web"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.containers[0].volumeMounts[0].name`.
    pub path: String,
    /// What is wrong, e.g. `Not found: "data"`.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a manifest could not be read or is not a valid pod.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{source_name}:{line}:{column}: YAML syntax error: {message}")]
    Syntax {
        /// The file.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The text is larger or more deeply nested than any pod needs (it is
    /// refused before parsing, which would take too long).
    #[error("{source_name}: {message}")]
    TooComplex {
        /// The file.
        source_name: String,
        /// What bound it passed.
        message: String,
    },
    /// A field that Kubernetes does not define here (strict validation).
    #[error("{source_name}: {path}: unknown field{}", at(.location))]
    UnknownField {
        /// The file.
        source_name: String,
        /// Full path of the unknown field, e.g. `spec.restprtPolicy`.
        path: String,
        /// Line and column, when known.
        location: Option<(usize, usize)>,
    },
    /// A field has the wrong type (a string where a list belongs, …).
    #[error("{source_name}: {path}: {message}{}", at(.location))]
    Type {
        /// The file.
        source_name: String,
        /// Path of the field.
        path: String,
        /// Line and column, when known.
        location: Option<(usize, usize)>,
        /// The decoder's message.
        message: String,
    },
    /// A document-level problem (kind, apiVersion).
    #[error("{source_name}: {path}: {message}")]
    Field {
        /// The file.
        source_name: String,
        /// Path of the field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file has no `kind: Pod` document.
    #[error(
        "{source_name}: no Pod in this file (expected a document with apiVersion: v1, kind: Pod)"
    )]
    NoPod {
        /// The file.
        source_name: String,
    },
    /// The file has more than one pod.
    #[error("{source_name}: {count} Pods in one file; wasipod runs one pod per file")]
    ManyPods {
        /// The file.
        source_name: String,
        /// How many pods.
        count: usize,
    },
    /// The pod breaks Kubernetes' validation rules (all problems listed).
    #[error("{source_name}: Pod {pod:?} is invalid:\n{}", list(.errors))]
    Invalid {
        /// The file.
        source_name: String,
        /// The pod's name.
        pod: String,
        /// Every problem found.
        errors: Vec<FieldError>,
    },
}

fn at(location: &Option<(usize, usize)>) -> String {
    match location {
        Some((line, column)) => format!(" (line {line}, column {column})"),
        None => String::new(),
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  * {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ManifestError {
    /// The field problems of an [`ManifestError::Invalid`]; for the other
    /// kinds, the one problem this error describes as a field error.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ManifestError::Invalid { errors, .. } => errors.clone(),
            ManifestError::UnknownField { path, .. } => {
                vec![FieldError::new(path, "unknown field")]
            }
            ManifestError::Type { path, message, .. }
            | ManifestError::Field { path, message, .. } => {
                vec![FieldError::new(path, message)]
            }
            other => vec![FieldError::new("", other.to_string())],
        }
    }
}

/// Errors from the runtime itself (set-up, images, the sandbox).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be configured.
    #[error("wasmtime engine: {0}")]
    Engine(String),
    /// A directory of the runtime could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A container's image could not be loaded or compiled.
    #[error("{field}: {path}: {message}")]
    Image {
        /// The field naming the image, e.g. `spec.containers[0].image`.
        field: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A volume could not be prepared.
    #[error("{field}: {message}")]
    Volume {
        /// The field, e.g. `spec.volumes[0].hostPath.path`.
        field: String,
        /// What went wrong.
        message: String,
    },
    /// A resource the pod asks for is beyond what this runtime offers.
    #[error("{field}: {message}")]
    Limit {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// A published port could not be opened on the host.
    #[error("{source_field}: cannot listen on {address}: {message}")]
    Publish {
        /// Where the port was asked for.
        source_field: String,
        /// The host address.
        address: std::net::SocketAddr,
        /// The system's reason.
        message: String,
    },
    /// The runtime has none left of something pods need (pod addresses).
    #[error("{message}")]
    Exhausted {
        /// What ran out, and where.
        message: String,
    },
    /// Another pod of this runtime has the same namespace and name.
    #[error("pods \"{name}\" already exists in namespace \"{namespace}\"")]
    AlreadyExists {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// No pod of that namespace and name.
    #[error("pods \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The object is not in a state that allows this (starting a container
    /// twice, exec into one that has ended).
    #[error("{object}: {message}")]
    FailedPrecondition {
        /// What it was asked of.
        object: String,
        /// Why not now.
        message: String,
    },
    /// The pod has no container of that name.
    #[error("container \"{container}\" is not valid for pod \"{pod}\"")]
    NoSuchContainer {
        /// The pod.
        pod: String,
        /// The container asked for.
        container: String,
    },
    /// The manifest was invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What kind of failure an error is: each front end maps kinds to its own
/// codes in one place (gRPC/ttrpc codes, `metav1.Status` reasons, exit
/// codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object asked for does not exist.
    NotFound,
    /// An object of that name exists already.
    AlreadyExists,
    /// The request or manifest is invalid (names the field).
    InvalidArgument,
    /// The object is not in a state that allows this now.
    FailedPrecondition,
    /// A limit of this runtime or machine was reached (memory slots, ports,
    /// addresses).
    ResourceExhausted,
    /// A failure of the runtime or the host (I/O, the engine).
    Internal,
}

impl ErrorKind {
    /// The name, spelled as gRPC spells the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::FailedPrecondition => "FailedPrecondition",
            ErrorKind::ResourceExhausted => "ResourceExhausted",
            ErrorKind::Internal => "Internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ManifestError {
    /// Its kind: a file that cannot be read is [`ErrorKind::NotFound`] or
    /// [`ErrorKind::Internal`]; everything else is invalid input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ManifestError::Read { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Internal,
            },
            _ => ErrorKind::InvalidArgument,
        }
    }
}

impl RuntimeError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::Engine(_) | RuntimeError::Io { .. } => ErrorKind::Internal,
            RuntimeError::Image { .. } | RuntimeError::Volume { .. } => ErrorKind::InvalidArgument,
            RuntimeError::Limit { .. } => ErrorKind::InvalidArgument,
            RuntimeError::Publish { .. } | RuntimeError::Exhausted { .. } => {
                ErrorKind::ResourceExhausted
            }
            RuntimeError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            RuntimeError::NotFound { .. } | RuntimeError::NoSuchContainer { .. } => {
                ErrorKind::NotFound
            }
            RuntimeError::FailedPrecondition { .. } => ErrorKind::FailedPrecondition,
            RuntimeError::Manifest(e) => e.kind(),
        }
    }
}

/// A transition the container state machine does not allow (a bug in the
/// pod worker if it ever shows).
#[derive(Debug, Clone, thiserror::Error)]
#[error("container {container}: cannot {action} from state {from}")]
pub struct TransitionError {
    /// The container.
    pub container: String,
    /// What was attempted.
    pub action: &'static str,
    /// The state it was in.
    pub from: &'static str,
}
