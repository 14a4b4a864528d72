//! Scheduling priority for background work. Events and the engine's store bookkeeping are
//! throughput work: when the machine is saturated, the latency-bound work (identity
//! providers' requests, a delivery's request and response) goes first, and the background
//! catches up as soon as there is room, instead of both slowing down.

/// How much less a background thread is favoured by the scheduler than request handling. Not
/// the idle class: background work must still move on a machine kept busy by other work.
pub(crate) const NICENESS: i32 = 10;

/// Lowers the calling thread's priority to [`NICENESS`] (threads it starts inherit it).
#[cfg(target_os = "linux")]
pub fn lower_this_thread() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: changes this thread's niceness only; raising it needs no privilege, and a
    // refusal (a sandbox) leaves it as it was.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICENESS) };
}

#[cfg(not(target_os = "linux"))]
pub fn lower_this_thread() {}
