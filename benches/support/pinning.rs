//! Benches that stand in for two machines on one: a part started while the calling thread is
//! pinned to some cores keeps those cores, since threads (and processes) inherit the
//! affinity of the thread that starts them.

/// The machine's cores. Counted once, before any pinning: a pinned thread sees only its own.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Whether to pin: on two cores or more, unless `SCIMGATE_BENCH_PIN=0`.
pub fn wanted() -> bool {
    cores() >= 2 && std::env::var("SCIMGATE_BENCH_PIN").as_deref() != Ok("0")
}

/// Runs the calling thread (and the threads and processes it starts from now on) on the given
/// cores only.
pub fn run_on(cores: std::ops::Range<usize>) {
    // SAFETY: `set` is a plain bit set, initialised by CPU_ZERO before use, and the call only
    // changes the calling thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for core in cores {
            libc::CPU_SET(core, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "could not pin the bench to its cores: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Starts `part` on the machine's last core (it keeps that core, with every thread it starts
/// later), then puts the calling thread on the other cores.
pub fn on_last_core<T>(cores: usize, part: impl FnOnce() -> T) -> T {
    run_on(cores - 1..cores);
    let started = part();
    run_on(0..cores - 1);
    started
}

/// Says what runs on the last core and what on the others.
pub fn announce(cores: usize, last: &str, others: &str) {
    println!(
        "{last} pinned to core {}, {others} to cores 0..{}",
        cores - 1,
        cores - 1
    );
}
