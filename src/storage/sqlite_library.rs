//! The SQLite library's process-wide settings, and the ones each new connection gets before
//! diesel prepares anything on it. Neither is reachable through diesel, hence the C API.

use std::ffi::{c_char, c_int};

use libsqlite3_sys as ffi;

/// Configures the library once, before this process opens its first database (SQLite refuses
/// process-wide options afterwards).
///
/// - Memory statistics off: with them on, every allocation inside SQLite takes one global
///   mutex, and a profile of 16 concurrent readers showed a fifth of the server's CPU waking
///   and waiting on it.
/// - Multi-thread mode: a connection is only ever used by one thread at a time (diesel holds it
///   by `&mut`, the pool lends it to one borrower), so its own per-call mutex is not needed.
/// - Statement journals keep SQLite's default threshold (64 KiB in memory, then a temporary
///   file): raised to 4 MiB, 1 MiB or 256 KiB, a write copying 100,000 rows failed with
///   "database or disk is full" (`tests/api/write_connection.rs`).
/// - Every connection opened from then on gets [`on_open`].
pub(crate) fn configure() {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        // SAFETY: each option takes the documented arguments (one int; none), and this runs
        // before this process's first `sqlite3_open_v2`. Had the library been initialised
        // already, it answers SQLITE_MISUSE and keeps its defaults, which are safe.
        let (memstatus, threading) = unsafe {
            (
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MULTITHREAD),
            )
        };
        // SAFETY: `on_open` has the entry point's signature and lives as long as the process.
        let hooked = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
        if memstatus != ffi::SQLITE_OK || threading != ffi::SQLITE_OK || hooked != ffi::SQLITE_OK {
            tracing::warn!(
                memstatus,
                threading,
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
