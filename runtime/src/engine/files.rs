//! Open files: a cap per guest and a budget for the whole runtime, so that
//! one guest cannot take every file descriptor of the process (its
//! neighbours' writes, published ports and new pods' log files need some).
//!
//! A guest's open files are the `wasi:filesystem` descriptors in its
//! resource table (its preopens count, as stdio counts against `ulimit -n`).
//! For wasip2 guests, opening one more past the cap fails in the guest:
//! wasip2's `error-code` has no `EMFILE`, so it gets `quota` (`EDQUOT`), the
//! nearest one. wasmtime-wasi's wasip1 offers no hook at `path_open`, so a
//! wasip1 guest's resource table is capped instead and a guest that goes
//! past it is stopped with a clear message. The runtime-wide budget is
//! three quarters of the process's `RLIMIT_NOFILE` (raised to its hard
//! limit when the runtime starts): the last quarter is the runtime's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags,
};

use super::P2State;

/// The open-file limits of a runtime, shared by its guests.
#[derive(Debug)]
pub(crate) struct FileBudget {
    /// Descriptors one guest may hold.
    per_guest: usize,
    /// Descriptors all guests together may hold.
    total: usize,
    /// Descriptors the guests held when last counted.
    used: AtomicUsize,
}

impl FileBudget {
    /// `per_guest` per guest; `total` in all (`None`: three quarters of the
    /// process's file limit, raised to its hard limit first).
    pub(crate) fn new(per_guest: usize, total: Option<usize>) -> Arc<Self> {
        let total = total.unwrap_or_else(|| raise_nofile_limit() / 4 * 3);
        Arc::new(Self {
            per_guest,
            total,
            used: AtomicUsize::new(0),
        })
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one and returns it.
fn raise_nofile_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// One guest's share of the budget (in its store's data).
pub(crate) struct GuestFiles {
    budget: Arc<FileBudget>,
    /// What this guest adds to `budget.used`.
    counted: usize,
    /// wasip1 host calls so far.
    calls: u32,
}

impl GuestFiles {
    pub(crate) fn new(budget: Arc<FileBudget>) -> Self {
        Self {
            budget,
            counted: 0,
            calls: 0,
        }
    }

    /// Records that the guest holds `open` descriptors now.
    fn recount(&mut self, open: usize) {
        if open >= self.counted {
            self.budget
                .used
                .fetch_add(open - self.counted, Ordering::Relaxed);
        } else {
            self.budget
                .used
                .fetch_sub(self.counted - open, Ordering::Relaxed);
        }
        self.counted = open;
    }

    /// Whether a guest holding the descriptors of `table` may open one more.
    fn admit(&mut self, table: &mut ResourceTable) -> bool {
        let open = table.iter_mut().filter(|e| e.is::<Descriptor>()).count();
        self.recount(open);
        open < self.budget.per_guest && self.budget.used.load(Ordering::Relaxed) < self.budget.total
    }

    /// Counts a descriptor just opened.
    fn opened(&mut self) {
        self.recount(self.counted + 1);
    }
}

impl Drop for GuestFiles {
    fn drop(&mut self) {
        self.recount(0);
    }
}

/// Shadows wasip2's `open-at` with one that checks the budget first.
pub(crate) fn add_p2(linker: &mut wasmtime::component::Linker<P2State>) -> wasmtime::Result<()> {
    type Params = (
        Resource<Descriptor>,
        PathFlags,
        String,
        OpenFlags,
        DescriptorFlags,
    );
    linker
        .instance("wasi:filesystem/types@0.2.12")?
        .func_wrap_async(
            "[method]descriptor.open-at",
            |mut store, (fd, path_flags, path, open_flags, flags): Params| {
                Box::new(async move {
                    let state = store.data_mut();
                    if !state.files.admit(&mut state.table) {
                        return Ok((Err(ErrorCode::Quota),));
                    }
                    let opened = super::synthetic::p2_open_at(
                        state, fd, path_flags, path, open_flags, flags,
                    )
                    .await?;
                    if opened.is_ok() {
                        store.data_mut().files.opened();
                    }
                    Ok((opened,))
                })
            },
        )
}

/// How many wasip1 host calls pass between two counts of a guest's open
/// files (a count walks its resource table).
const P1_RECOUNT_EVERY: u32 = 64;

/// Entries a wasip1 guest's table may hold besides its descriptors
/// (streams that live for one call).
const P1_SLACK: usize = 16;

impl GuestFiles {
    /// Called before every wasip1 host call (wasmtime-wasi's wasip1 has no
    /// hook at `path_open` itself): every [`P1_RECOUNT_EVERY`] calls, counts
    /// the guest's descriptors and caps its resource table at what the
    /// budget leaves. Past the cap, wasmtime-wasi's `path_open` cannot
    /// store the new descriptor and the guest traps (see [`too_many`]).
    pub(crate) fn before_p1_call(&mut self, ctx: &mut wasmtime_wasi::p1::WasiP1Ctx) {
        self.calls = self.calls.wrapping_add(1);
        if self.calls % P1_RECOUNT_EVERY != 1 {
            return;
        }
        let table = wasmtime_wasi::WasiView::ctx(ctx).table;
        let mut entries = 0;
        let mut open = 0;
        for e in table.iter_mut() {
            entries += 1;
            open += usize::from(e.is::<Descriptor>());
        }
        self.recount(open);
        let room = self
            .budget
            .total
            .saturating_sub(self.budget.used.load(Ordering::Relaxed));
        let allowed = self.budget.per_guest.min(open + room);
        table.set_max_capacity(entries - open + allowed + P1_SLACK);
    }
}

/// The exit message of a guest stopped because its table was full (a
/// wasip1 guest past its open-file cap), if that is why it stopped.
pub(crate) fn too_many(err: &wasmtime::Error, budget: &FileBudget) -> Option<String> {
    err.chain()
        .any(|e| {
            matches!(
                e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
        })
        .then(|| {
            format!(
                "too many open files: the guest opened more than its cap of {} (RuntimeConfig::max_open_files; wasip1 cannot be answered EMFILE by wasmtime-wasi, so the guest is stopped)",
                budget.per_guest.min(budget.total)
            )
        })
}
