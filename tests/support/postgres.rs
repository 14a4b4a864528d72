//! A throwaway PostgreSQL server for the test process: initdb into a temp dir, run on a free
//! loopback port, one fresh database per test. The server dies with the test process.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct PostgresServer {
    bindir: PathBuf,
    port: u16,
    user: String,
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<PostgresServer> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

pub fn shared() -> &'static PostgresServer {
    SERVER.get_or_init(PostgresServer::start)
}

/// Where initdb and postgres live: `pg_config --bindir`, Debian's versioned directory, or PATH.
fn find_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() && dir.join("postgres").exists() {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return dir;
        }
    }
    panic!("PostgreSQL server binaries not found: apt-get install postgresql");
}

/// initdb refuses to run as root; as root, run the cluster as `postgres` (or `nobody`).
fn cluster_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: a valid NUL-terminated name; the returned record is read at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: checked non-null above.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Some((uid, gid));
        }
    }
    panic!("running as root and neither a 'postgres' nor a 'nobody' user exists");
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PostgresServer {
    fn start() -> PostgresServer {
        let bindir = find_bindir();
        let owner = cluster_owner();
        let dir = tempfile::Builder::new()
            .prefix("scimgate-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL");
        let data = dir.path().join("data");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let user = "scimgate".to_string();
        let out = as_owner(
            Command::new(bindir.join("initdb")).current_dir(dir.path()),
            owner,
        )
        .args([
            "-A",
            "trust",
            "-U",
            &user,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        for _attempt in 0..5 {
            let port = free_port();
            if Self::launch(&bindir, dir.path(), &data, port, owner) {
                return PostgresServer {
                    bindir,
                    port,
                    user,
                    _dir: dir,
                };
            }
        }
        let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
        panic!("PostgreSQL did not start:\n{log}");
    }

    /// Starts postgres from a thread that lives as long as the process: PR_SET_PDEATHSIG fires
    /// when the spawning thread ends, so the server is killed exactly when the tests end.
    fn launch(
        bindir: &Path,
        dir: &Path,
        data: &Path,
        port: u16,
        owner: Option<(u32, u32)>,
    ) -> bool {
        let log_path = dir.join("postgres.log");
        let mut cmd = Command::new(bindir.join("postgres"));
        as_owner(&mut cmd, owner)
            .current_dir(dir)
            .arg("-D")
            .arg(data)
            .arg("-k")
            .arg(dir)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=64MB"])
            .stdin(Stdio::null());
        let log = std::fs::File::create(&log_path).expect("postgres log file");
        let log_err = log.try_clone().expect("postgres log file");
        cmd.stdout(log).stderr(log_err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-owner".into())
            .spawn(move || {
                let child = cmd.spawn();
                let ok = child.is_ok();
                let _ = tx.send(child.map(|c| c.id()));
                if ok {
                    loop {
                        std::thread::park();
                    }
                }
            })
            .expect("spawn postgres owner thread");
        let Ok(Ok(_pid)) = rx.recv() else {
            return false;
        };

        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(bindir.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("could not bind") || log.contains("FATAL") {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "scimgate_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new(self.bindir.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
                "-d",
                "postgres",
            ])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://{}@127.0.0.1:{}/{name}", self.user, self.port)
    }
}
