//! The SQLite library's process-wide settings, and the ones each new connection gets before
//! diesel prepares anything on it. Neither is reachable through diesel, hence the C API.

use std::ffi::{c_char, c_int};

use libsqlite3_sys as ffi;

/// Bytes of a statement journal kept in memory before it spills to a temporary file.
const STATEMENT_JOURNAL_IN_MEMORY: usize = 4 << 20;

/// Configures the library once, before this process opens its first database (SQLite refuses
/// process-wide options afterwards).
///
/// - Memory statistics off: with them on, every allocation inside SQLite takes one global
///   mutex, and a profile of 16 concurrent readers showed a fifth of the server's CPU waking
///   and waiting on it.
/// - Multi-thread mode: a connection is only ever used by one thread at a time (diesel holds it
///   by `&mut`, the pool lends it to one borrower), so its own per-call mutex is not needed.
/// - Statement journals (a multi-row write's undo within its transaction) stay in memory up
///   to [`STATEMENT_JOURNAL_IN_MEMORY`] instead of 64 KiB: a batch of 64 rows into a table
///   keyed by random ids touches more pages than that, and recording a batch of delivery
///   outcomes wrote each page out to a temporary file first.
/// - Every connection opened from then on gets [`on_open`].
pub(crate) fn configure() {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        // SAFETY: each option takes the documented arguments (one int; none; one int), and
        // this runs before this process's first `sqlite3_open_v2`. Had the library been initialised
        // already, it answers SQLITE_MISUSE and keeps its defaults, which are safe.
        let (memstatus, threading, journals) = unsafe {
            (
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MULTITHREAD),
                ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
                    STATEMENT_JOURNAL_IN_MEMORY as c_int,
                ),
            )
        };
        // SAFETY: `on_open` has the entry point's signature and lives as long as the process.
        let hooked = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
        let answers = [memstatus, threading, journals, hooked];
        if answers.iter().any(|answer| *answer != ffi::SQLITE_OK) {
            tracing::warn!(
                memstatus,
                threading,
                journals,
                hooked,
                "SQLite was initialised before scimgate configured it; it keeps its defaults"
            );
        }
    });
}

/// Runs on each new connection: turns on the query planner stability guarantee.
///
/// Without it, SQLite 3.53 plans `LIMIT ?` with the value bound at the time, and marks the
/// statement to be planned again whenever that parameter is bound anew: every cached search
/// statement was parsed and planned again on every request, a third of a filtered GET's CPU.
/// Our statements are written so that one plan serves every value.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite passes the connection being opened; the option takes an int and an
    // optional int* for the new setting, which we do not read.
    unsafe {
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    }
}
