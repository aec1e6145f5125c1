//! What an image is, read from its bytes before anything is compiled (a
//! few milliseconds even for tens of megabytes: function bodies are
//! skipped): a WASI command or not, and which WASI version. An image that
//! cannot run is refused here, before a compile that could take minutes and
//! before anything is cached.

use wasmparser::{ComponentExternalKind, ExternalKind, Parser, Payload};

/// The WASI version an image is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiVersion {
    /// WASI 0.1 (`wasi_snapshot_preview1`): a core module.
    P1,
    /// WASI 0.2: a component.
    P2,
}

impl WasiVersion {
    /// `wasip1`, `wasip2`.
    pub fn as_str(self) -> &'static str {
        match self {
            WasiVersion::P1 => "wasip1",
            WasiVersion::P2 => "wasip2",
        }
    }
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its WASI version (and so whether it is a module or a component).
    pub wasi: WasiVersion,
    /// How many bytes.
    pub size: usize,
}

/// The import module a wasip1 command may use.
const P1_MODULE: &str = "wasi_snapshot_preview1";
/// The export that makes a component a WASI 0.2 command.
const P2_RUN: &str = "wasi:cli/run@0.2";

/// Checks that `bytes` are a WASI command wasipod can run: a core module
/// that exports `_start` and imports only from `wasi_snapshot_preview1`,
/// or a component that exports `wasi:cli/run@0.2.*`. `Err` says why not.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, String> {
    if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
        return Err("not a WebAssembly module or component (bad magic number)".into());
    }
    let info = if Parser::is_component(bytes) {
        inspect_component(bytes)?
    } else if Parser::is_core_wasm(bytes) {
        inspect_module(bytes)?
    } else {
        return Err("not a WebAssembly module or component (unknown version)".into());
    };
    Ok(ImageInfo {
        size: bytes.len(),
        ..info
    })
}

fn malformed(e: wasmparser::BinaryReaderError) -> String {
    format!("malformed WebAssembly: {e}")
}

fn inspect_module(bytes: &[u8]) -> Result<ImageInfo, String> {
    let mut start = false;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(malformed)?;
                    if import.module != P1_MODULE {
                        return Err(format!(
                            "the module imports {}::{}, which no WASI host provides (a wasip1 command imports only from {P1_MODULE})",
                            import.module, import.name
                        ));
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(malformed)?;
                    start |= export.name == "_start" && export.kind == ExternalKind::Func;
                }
            }
            // Imports and exports come before the code: nothing more to read.
            Payload::CodeSectionStart { .. } | Payload::End(_) => break,
            _ => {}
        }
    }
    if !start {
        return Err(
            "the module has no _start export: it is a library (reactor), not a WASI command".into(),
        );
    }
    Ok(ImageInfo {
        wasi: WasiVersion::P1,
        size: 0,
    })
}

fn inspect_component(bytes: &[u8]) -> Result<ImageInfo, String> {
    let mut depth = 0usize;
    let mut run = None;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.map_err(malformed)?;
                    if export.kind == ComponentExternalKind::Instance
                        && export.name.name.starts_with("wasi:cli/run@")
                    {
                        run = Some(export.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    match run {
        Some(name) if name.starts_with(P2_RUN) => Ok(ImageInfo {
            wasi: WasiVersion::P2,
            size: 0,
        }),
        Some(name) => Err(format!(
            "the component exports {name}: wasipod runs WASI 0.2 commands ({P2_RUN}.*)"
        )),
        None => Err(
            "the component exports no wasi:cli/run: it is a library, not a wasi:cli/command".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_are_refused_with_a_reason() {
        assert!(inspect(b"hello").unwrap_err().contains("magic"));
        assert!(inspect(b"\0asm\x09\0\0\0").unwrap_err().contains("version"));
    }
}
