//! The one place where failures become ttrpc statuses (containerd reads the
//! code: `NotFound` on a kill of a finished process, for example, is how
//! the CRI knows a container is already stopped).

use containerd_shim::protos::ttrpc::{self, Code};
use wasipod::ErrorKind;

/// A ttrpc error with a code and a message.
pub fn status(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// No task or exec of that id.
pub fn not_found(what: &str) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("{what}: not found"))
}

/// No task of that id in this shim.
pub fn no_task(id: &str) -> ttrpc::Error {
    not_found(&format!("task {id}"))
}

/// The request does not fit the task's state.
pub fn precondition(message: impl Into<String>) -> ttrpc::Error {
    status(Code::FAILED_PRECONDITION, message)
}

/// Something wasm cannot do, or a request that is malformed.
pub fn invalid(message: impl Into<String>) -> ttrpc::Error {
    status(Code::INVALID_ARGUMENT, message)
}

/// A failure reading the bundle or mounting its root file system.
pub fn internal(e: anyhow::Error) -> ttrpc::Error {
    status(Code::INTERNAL, format!("{e:#}"))
}

/// A runtime error, by its kind.
pub fn runtime(e: wasipod::RuntimeError) -> ttrpc::Error {
    let code = match e.kind() {
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
        ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
        ErrorKind::ResourceExhausted => Code::RESOURCE_EXHAUSTED,
        ErrorKind::Internal => Code::INTERNAL,
    };
    status(code, e.to_string())
}
