//! A throwaway PostgreSQL server for the test process: `initdb` into a temp dir, `postgres` on a
//! free loopback port with trust auth, one fresh database per test.
//!
//! Lifetime: statics are never dropped, so the server is tied to the process two ways.
//! * Normal exit: an `atexit` hook stops postgres with SIGQUIT (immediate shutdown, which still
//!   releases its SysV and POSIX shared memory) and deletes the temp dir (tens of MB or more).
//! * Any other death (Ctrl-C, abort, SIGKILL, ...): postgres is spawned from a thread that lives
//!   as long as the server, with `PR_SET_PDEATHSIG`, so the kernel signals it when the process
//!   (and so that thread) goes away. The signal is SIGQUIT rather than SIGKILL: postgres answers
//!   it with the same immediate shutdown (its backends get SIGKILL after 5 s at worst), while a
//!   SIGKILLed postmaster would leak a SysV segment and /dev/shm files on every run. Only the
//!   temp dir is left behind then.
//!
//! The server binaries must be installed (`apt-get install postgresql`); there is no skipping.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; every database URL connects as this role.
const USER: &str = "scimgate";
/// How long the server gets to accept connections before the harness gives up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Port attempts: another process may grab the port between probing and postgres binding it.
const PORT_ATTEMPTS: usize = 5;
/// Longest socket dir we hand to `-k`: a Unix socket path (dir + "/.s.PGSQL.NNNNN") is limited
/// to 107 bytes. Longer temp dirs get no Unix socket at all; everything here uses TCP anyway.
const MAX_SOCKET_DIR_LEN: usize = 80;

pub struct PostgresServer {
    bindir: PathBuf,
    port: u16,
    /// Keeps the cluster's directory alive for the whole process (never dropped; the `atexit`
    /// hook deletes the directory instead).
    _dir: tempfile::TempDir,
}

/// The outcome of the one start attempt per process. A failure is remembered so every test
/// fails at once with the same message instead of each retrying a 30 s startup.
static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
/// What the `atexit` hook needs: the postmaster pid and the directory to delete.
static CLEANUP: OnceLock<(libc::pid_t, PathBuf)> = OnceLock::new();
/// The last postmaster pid its owner thread reaped, so the hook never signals a reused pid.
static REAPED: AtomicI32 = AtomicI32::new(0);
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// How the server treats commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // The tests use only `Test`; the benchmarks use both.
pub enum Durability {
    /// No fsync, asynchronous commit: fast, and enough for a server thrown away at exit.
    Test,
    /// PostgreSQL's own defaults (fsync, synchronous commit, full-page writes), as a
    /// production server runs.
    Production,
}

/// The process-wide server, started on first use with test durability.
#[allow(dead_code)] // The benchmarks choose their durability.
pub fn shared() -> &'static PostgresServer {
    shared_with(Durability::Test)
}

/// The process-wide server, started on first use with `durability` (a server already started
/// keeps its own).
pub fn shared_with(durability: Durability) -> &'static PostgresServer {
    let started = SERVER.get_or_init(|| {
        std::panic::catch_unwind(|| PostgresServer::start(durability)).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string())
        })
    });
    match started {
        Ok(server) => server,
        Err(message) => panic!("the test PostgreSQL server failed to start: {message}"),
    }
}

impl PostgresServer {
    /// A new, empty database owned by the superuser; its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "scimgate_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let out = psql(&self.bindir, self.port, "postgres")
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("run psql to create a test database");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    fn start(durability: Durability) -> PostgresServer {
        let bindir = find_bindir();
        let owner = cluster_owner();
        let dir = tempfile::Builder::new()
            .prefix("scimgate-pg-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(std::env::temp_dir())
            .expect("create a temp dir for the test PostgreSQL cluster");
        // Mode 0700 (tempfile's default would follow the umask); hand it to the cluster owner.
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the PostgreSQL temp dir to the cluster owner");
        }
        let data = dir.path().join("data");
        let log_path = dir.path().join("postgres.log");

        let mut initdb = Command::new(bindir.join("initdb"));
        as_owner(&mut initdb, owner)
            .current_dir(dir.path())
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .args([
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&data)
            .stdin(Stdio::null());
        let out = initdb.output().unwrap_or_else(|e| {
            panic!(
                "could not run {} (as uid/gid {owner:?}; it must be able to reach {}): {e}",
                bindir.join("initdb").display(),
                dir.path().display()
            )
        });
        assert!(
            out.status.success(),
            "initdb failed ({}) in {}:\n{}{}",
            out.status,
            dir.path().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
            let postmaster = spawn_postmaster(
                &bindir,
                dir.path(),
                &data,
                &log_path,
                (port, durability),
                owner,
            );
            match wait_ready(&bindir, port, &postmaster) {
                Ok(()) => {
                    let pid = postmaster.pid;
                    if CLEANUP.set((pid, dir.path().to_path_buf())).is_ok() {
                        // SAFETY: registers a plain extern "C" fn; it only runs at exit.
                        unsafe { libc::atexit(stop_at_exit) };
                    }
                    return PostgresServer {
                        bindir,
                        port,
                        _dir: dir,
                    };
                }
                Err(Failure::Exited(status)) => {
                    // Only this attempt's part of the (appended) log.
                    let log = std::fs::read(&log_path).unwrap_or_default();
                    let log = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
                    let port_taken = log.contains("could not bind")
                        || log.contains("Address already in use")
                        || log.contains("could not create any TCP/IP sockets");
                    failures.push(format!("port {port}: postgres exited with {status}"));
                    if !port_taken {
                        break;
                    }
                }
                Err(Failure::TimedOut) => {
                    postmaster.kill_and_wait();
                    failures.push(format!(
                        "port {port}: not accepting connections after {STARTUP_TIMEOUT:?}"
                    ));
                    break;
                }
            }
        }
        // Dropping `dir` on the way out removes the cluster.
        panic!(
            "PostgreSQL did not start ({}). Server log {}:\n{}",
            failures.join("; "),
            log_path.display(),
            read_log(&log_path)
        );
    }
}

/// Where `initdb` and `postgres` live: `pg_config --bindir`, the newest Debian
/// `/usr/lib/postgresql/N/bin`, or a directory on PATH holding both.
fn find_bindir() -> PathBuf {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // Debian's pg_config comes with the client package and may point at /usr/bin,
        // which has psql but not the server: only trust it if the server is there.
        if out.status.success() && has_server(&dir) {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server(&dir) {
                return dir;
            }
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, postgres) not found via `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin or PATH; the integration tests need a real server: \
         apt-get install postgresql"
    );
}

/// initdb and postgres refuse to run as root; as root, run the cluster as `postgres` if that
/// account exists, else `nobody`. `None` means: run as the current user.
fn cluster_owner() -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: a valid NUL-terminated name; the static record is read before any other
        // passwd lookup could overwrite it (this runs once, under the OnceLock).
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: checked non-null above.
            return Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) });
        }
    }
    panic!("running as root, and neither a `postgres` nor a `nobody` account exists to run initdb");
}

fn as_owner(cmd: &mut Command, owner: Option<(libc::uid_t, libc::gid_t)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        // std drops supplementary groups too when switching away from root.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port for PostgreSQL")
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// A psql invocation against the test server: no psqlrc, no password prompt, stop on error.
fn psql(bindir: &Path, port: u16, database: &str) -> Command {
    let mut cmd = Command::new(bindir.join("psql"));
    for var in [
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGPASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", USER, "-d", database])
        .stdin(Stdio::null());
    cmd
}

struct Postmaster {
    pid: libc::pid_t,
    /// Receives the exit status once the owner thread has reaped the postmaster.
    exited: mpsc::Receiver<ExitStatus>,
}

impl Postmaster {
    fn kill_and_wait(&self) {
        // SAFETY: plain syscall on a pid our owner thread has not reaped yet.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.exited.recv_timeout(Duration::from_secs(10));
    }
}

enum Failure {
    Exited(ExitStatus),
    TimedOut,
}

/// Starts postgres from a dedicated thread that outlives it: PR_SET_PDEATHSIG fires when the
/// *thread* that forked the child ends, so that thread blocks in `wait` for as long as the
/// server runs (i.e. until the process exits).
fn spawn_postmaster(
    bindir: &Path,
    dir: &Path,
    data: &Path,
    log_path: &Path,
    (port, durability): (u16, Durability),
    owner: Option<(libc::uid_t, libc::gid_t)>,
) -> Postmaster {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open the PostgreSQL log file");
    let log_err = log
        .try_clone()
        .expect("clone the PostgreSQL log file handle");
    let socket_dir = match dir.to_str() {
        Some(s) if s.len() <= MAX_SOCKET_DIR_LEN => s.to_string(),
        _ => String::new(),
    };

    let mut cmd = Command::new(bindir.join("postgres"));
    as_owner(&mut cmd, owner)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env_remove("PGDATA")
        .arg("-D")
        .arg(data)
        .args([
            "-k",
            &socket_dir,
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(match durability {
            Durability::Test => &[
                "-F",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ][..],
            Durability::Production => &[],
        })
        .args(["-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec. std runs this after the
    // uid/gid switch, which matters: changing credentials clears the death signal.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The process may have died between fork and prctl: then no signal would come.
            if libc::getppid() != parent {
                return Err(io::Error::other(
                    "test process exited before postgres started",
                ));
            }
            Ok(())
        });
    }

    let (spawned_tx, spawned_rx) = mpsc::channel::<io::Result<u32>>();
    let (exited_tx, exited_rx) = mpsc::channel::<ExitStatus>();
    std::thread::Builder::new()
        .name(format!("postgres-{port}"))
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = spawned_tx.send(Err(e));
                    return;
                }
            };
            let _ = spawned_tx.send(Ok(child.id()));
            match child.wait() {
                // The server is gone, so this thread may end too.
                Ok(status) => {
                    REAPED.store(child.id() as libc::pid_t, Ordering::SeqCst);
                    let _ = exited_tx.send(status);
                }
                // Cannot tell whether it is still running (e.g. someone else reaped it):
                // stay alive so the death signal does not fire early.
                Err(_) => loop {
                    std::thread::park();
                },
            }
        })
        .expect("spawn the thread that owns the postgres process");
    let pid = spawned_rx
        .recv()
        .expect("the postgres owner thread reports the spawn")
        .unwrap_or_else(|e| panic!("could not start {}: {e}", bindir.join("postgres").display()));
    Postmaster {
        pid: pid as libc::pid_t,
        exited: exited_rx,
    }
}

/// Polls until the server answers `select 1`, it exits, or the timeout passes.
fn wait_ready(bindir: &Path, port: u16, postmaster: &Postmaster) -> Result<(), Failure> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(status) = postmaster.exited.try_recv() {
            return Err(Failure::Exited(status));
        }
        let accepting = Command::new(bindir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
            .args(["-d", "postgres", "-t", "2"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if accepting {
            let queried = psql(bindir, port, "postgres")
                .args(["-c", "select 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if queried {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `atexit` hook: immediate shutdown (SIGQUIT makes postgres stop its backends and release
/// shared memory without a checkpoint), then delete the cluster directory.
extern "C" fn stop_at_exit() {
    let Some((pid, dir)) = CLEANUP.get() else {
        return;
    };
    if REAPED.load(Ordering::SeqCst) == *pid {
        // It died earlier; the pid may belong to someone else by now.
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    // SAFETY: plain syscalls. The owner thread is still blocked in `wait` (exit() runs atexit
    // hooks before other threads stop), so it reaps the postmaster and the pid stays ours
    // until then; kill(pid, 0) fails with ESRCH once it is reaped.
    unsafe {
        if libc::kill(*pid, libc::SIGQUIT) == 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while libc::kill(*pid, 0) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
