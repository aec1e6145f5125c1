//! Shared by the benches: the store data of a bare wasmtime wasip2 guest.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A wasip2 guest's store data, as wasmtime-wasi wants it.
pub struct Guest {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl Guest {
    pub fn new(ctx: WasiCtx) -> Self {
        Self {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}
