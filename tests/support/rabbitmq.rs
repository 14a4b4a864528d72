//! A real RabbitMQ broker for integration tests (Debian's `rabbitmq-server` 3.10): a node of its
//! own in a temp dir, on loopback ports, with a user of its own (not `guest`) that has full
//! permissions on vhost `/`. Start-up takes several seconds, so a test binary normally shares one
//! node ([`Broker::shared`]); a test that stops and restarts the node takes its own
//! ([`Broker::start`]).
//!
//! How the node is run, and why:
//! * The scripts in `/usr/lib/rabbitmq/bin` are called directly. The `rabbitmq-server` and
//!   `rabbitmqctl` on PATH are Debian's wrapper, which as root re-runs everything through
//!   `su rabbitmq`: that resets `HOME` (so the Erlang cookie no longer matches), needs the temp
//!   dir to belong to `rabbitmq`, and clears the death signal below.
//! * Everything the node reads or writes is in the temp dir: `HOME` (with the Erlang cookie,
//!   written before start so the node and `rabbitmqctl` agree on it), mnesia, logs, config, an
//!   empty plugin list and an empty `rabbitmq-env.conf` (so `/etc/rabbitmq` is never read).
//!   Inherited `RABBITMQ_*` and `ERL_*` variables are removed.
//! * Ports (AMQP, Erlang distribution, epmd) are picked at random in 20000..32000 and checked
//!   free: a node on a port in Linux's ephemeral range (32768 and up) was seen dying with
//!   `eaddrinuse`. `rabbitmqctl`'s own distribution port is left to the kernel (port 0). A start
//!   that fails with `eaddrinuse` is retried on new ports.
//! * Every node has its own `epmd`, started by us in the foreground (`epmd -port P`), instead of
//!   the daemon the VM (or `rabbitmqctl`) would start itself, which detaches and outlives the
//!   test; both run with `-start_epmd false`.
//! * `rabbitmq-server` normally forks the VM and waits for it in a shell, so a death signal set
//!   on the shell would not reach the VM. With `RABBITMQ_ALLOW_INPUT` set it `exec`s `erl`
//!   (which `exec`s `beam.smp`) instead, so the process we spawn *is* the VM; `-noinput` (which
//!   that mode leaves out) is passed back through `RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS`.
//! * Lifetime: the VM and epmd are spawned with `PR_SET_PDEATHSIG` (SIGKILL) from one thread
//!   that never ends (the signal fires when the *thread* that forked the child ends, and test
//!   threads end with their test), so they never outlive the test process, however it dies. The
//!   VM's own helpers (`erl_child_setup`, `inet_gethost`) exit when it does. [`Broker::start`]'s
//!   node is killed on `Drop`; the shared node (a static, never dropped) is killed and its temp
//!   dir deleted by an `atexit` hook on normal exit.
//! * Ready means: the AMQP port accepts connections and `rabbitmqctl await_startup` succeeds.
//!
//! The node's output goes to `server.out` and `log/` in its temp dir, not to the test's output;
//! a failed start panics with the tail of both. RabbitMQ must be installed
//! (`apt-get install rabbitmq-server`); there is no skipping.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a node gets to boot (from spawning the VM to `await_startup` succeeding).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `rabbitmqctl stop` gets before the VM is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Where ports are picked: below Linux's ephemeral range (32768..60999).
const PORT_RANGE: std::ops::Range<u16> = 20000..32000;
/// Start attempts on fresh ports when a port turns out to be taken after all.
const LAUNCH_ATTEMPTS: usize = 3;
const USERNAME: &str = "scimgate-test";
/// Lines of each log shown when a start fails.
const LOG_TAIL_LINES: usize = 60;

pub struct Broker {
    node: String,
    port: u16,
    /// The `amqps://` port: TLS with the tests' private CA (`tests/fixtures/ldap`, a
    /// certificate for `localhost` and `127.0.0.1`).
    tls_port: u16,
    dist_port: u16,
    epmd_port: u16,
    password: String,
    /// The directory holding `rabbitmq-server` and `rabbitmqctl`.
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The VM while the node runs.
    server: Mutex<Option<Child>>,
    epmd: Mutex<Option<Child>>,
}

/// The outcome of the one start of the shared node: a failure is remembered, so every test
/// fails at once with the same message instead of each waiting for another start-up.
static SHARED: OnceLock<Result<Broker, String>> = OnceLock::new();
/// Numbers the nodes of this process (their names must differ).
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);
/// Ports handed out in this process, so two nodes starting at once never pick the same one.
static TAKEN_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

impl Broker {
    /// The node shared by every test in this binary, started on first use. Never stopped by
    /// tests (use [`Broker::start`] for that); it is killed when the process exits.
    pub fn shared() -> &'static Broker {
        let started = SHARED.get_or_init(|| {
            let broker = std::panic::catch_unwind(Broker::start).map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".to_string())
            })?;
            // SAFETY: registers a plain extern "C" fn; it only runs at exit.
            unsafe { libc::atexit(stop_shared_at_exit) };
            Ok(broker)
        });
        match started {
            Ok(broker) => broker,
            Err(message) => panic!("the shared test RabbitMQ node failed to start: {message}"),
        }
    }

    /// A node of its own, running, with the test user created; killed (and its data deleted)
    /// on `Drop`.
    pub fn start() -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("scimgate-rabbitmq-")
            .tempdir()
            .expect("create a temp dir for the test RabbitMQ node");
        write_files(dir.path());
        let node = format!(
            "t{}_{}@localhost",
            std::process::id(),
            NEXT_NODE.fetch_add(1, Ordering::Relaxed)
        );
        let mut broker = Broker {
            node,
            port: 0,
            tls_port: 0,
            dist_port: 0,
            epmd_port: 0,
            password: format!("pw{:016x}", random_u64()),
            bin: find_bin(),
            dir,
            server: Mutex::new(None),
            epmd: Mutex::new(None),
        };
        if let Err(failure) = broker.start_epmd() {
            panic!("epmd for the test RabbitMQ node did not start: {failure}");
        }
        let mut failures = Vec::new();
        for _ in 0..LAUNCH_ATTEMPTS {
            broker.port = pick_port();
            broker.tls_port = pick_port();
            broker.dist_port = pick_port();
            match broker.launch() {
                Ok(child) => {
                    *lock(&broker.server) = Some(child);
                    broker.ctl(&["add_user", USERNAME, &broker.password]);
                    broker.ctl(&["set_permissions", "-p", "/", USERNAME, ".*", ".*", ".*"]);
                    return broker;
                }
                Err(failure) => {
                    let port_taken = failure.contains("eaddrinuse");
                    failures.push(failure);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!(
            "RabbitMQ did not start ({} attempt(s)):\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }

    /// `amqp://USER:PASS@127.0.0.1:PORT/%2f`: the test user, full permissions on vhost `/`.
    pub fn url(&self) -> String {
        format!(
            "amqp://{USERNAME}:{}@127.0.0.1:{}/%2f",
            self.password, self.port
        )
    }

    /// `amqp://127.0.0.1:PORT/%2f`, without credentials.
    pub fn url_without_credentials(&self) -> String {
        format!("amqp://127.0.0.1:{}/%2f", self.port)
    }

    pub fn username(&self) -> &str {
        USERNAME
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `amqps://127.0.0.1:TLS_PORT/%2f` without credentials; the server's certificate is
    /// signed by [`Broker::ca_file`].
    pub fn tls_url_without_credentials(&self) -> String {
        format!("amqps://127.0.0.1:{}/%2f", self.tls_port)
    }

    /// The CA that signs the node's TLS certificate.
    pub fn ca_file() -> PathBuf {
        fixtures().join("ca.pem")
    }

    /// The node's Erlang name, e.g. `t1234_0@localhost`.
    /// The Erlang VM's process id while the node runs (the server script `exec`s into it).
    pub fn vm_pid(&self) -> Option<u32> {
        lock(&self.server).as_ref().map(Child::id)
    }

    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The node's temp dir (`log/` holds its log, `server.out` its output).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the node completely (`rabbitmqctl stop`, then the VM is killed if it has not
    /// exited after 30 s) and returns once the VM has exited and the AMQP port refuses
    /// connections. Data and epmd stay. Does nothing if the node is stopped already.
    pub fn stop_node(&self) {
        let mut server = lock(&self.server);
        let Some(mut child) = server.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = self.ctl_output(&["stop"]);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while let Ok(None) = child.try_wait() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the RabbitMQ VM exited, yet port {} still accepts connections",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node again on the same ports and data dir (durable queues, persistent
    /// messages and the test user survive) and returns once it is up. Does nothing if it runs.
    pub fn start_node(&self) {
        let mut server = lock(&self.server);
        if let Some(child) = server.as_mut() {
            if let Ok(None) = child.try_wait() {
                return;
            }
        }
        *server = None;
        match self.launch() {
            Ok(child) => *server = Some(child),
            Err(failure) => panic!("RabbitMQ did not restart: {failure}"),
        }
    }

    /// `rabbitmqctl -n NODE ARGS...`; its stdout. Panics with its output if it fails. Pass
    /// `-q` among `args` to leave out the "Listing ..." banners.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_output(args);
        assert!(
            out.status.success(),
            "rabbitmqctl {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ctl_output(&self, args: &[&str]) -> Output {
        let mut command = self.command("rabbitmqctl");
        command
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null());
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec. The calling thread waits
        // for the command, so the signal comes only if the test process dies meanwhile.
        unsafe { command.pre_exec(move || die_with(parent)) };
        command
            .output()
            .unwrap_or_else(|e| panic!("could not run {}/rabbitmqctl: {e}", self.bin.display()))
    }

    /// `program` from the RabbitMQ bin dir (or epmd from PATH) with this node's environment.
    fn command(&self, program: &str) -> Command {
        let dir = self.dir.path();
        let mut command = if program == "epmd" {
            Command::new("epmd")
        } else {
            Command::new(self.bin.join(program))
        };
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("RABBITMQ_")
                || name_str.starts_with("ERL_")
                || name_str == "NOTIFY_SOCKET"
            {
                command.env_remove(&name);
            }
        }
        command
            .current_dir(dir)
            .env("HOME", dir)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            // rabbitmqctl's own node: any port the kernel gives (the default is a fixed range
            // of 11 ports shared by every concurrent rabbitmqctl).
            .env("RABBITMQ_CTL_DIST_PORT_MIN", "0")
            .env("RABBITMQ_CTL_DIST_PORT_MAX", "0")
            // `exec` the VM rather than fork it (see the module doc), without an Erlang shell.
            .env("RABBITMQ_ALLOW_INPUT", "true")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-noinput -start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
            )
            // Neither the VM nor rabbitmqctl may start an epmd of their own: that one would
            // detach and outlive the test.
            .env("RABBITMQ_CTL_ERL_ARGS", "-start_epmd false")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_CRASH_DUMP", dir.join("erl_crash.dump"));
        command
    }

    /// Starts this node's epmd on a free port (a few tries: the port may be taken meanwhile).
    fn start_epmd(&mut self) -> Result<(), String> {
        let mut failures = Vec::new();
        for _ in 0..LAUNCH_ATTEMPTS {
            self.epmd_port = pick_port();
            let log = self.dir.path().join("epmd.log");
            let log_start = file_len(&log);
            let mut command = self.command("epmd");
            command
                .args(["-port", &self.epmd_port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file(&log))
                .stderr(log_file(&log));
            let mut child = spawn_tied(command, "epmd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", self.epmd_port)).is_ok() {
                    *lock(&self.epmd) = Some(child);
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    failures.push(format!(
                        "epmd on port {} exited with {status}: {}",
                        self.epmd_port,
                        read_tail(&log, log_start)
                    ));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!(
                        "epmd did not listen on port {} within 10 s",
                        self.epmd_port
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(failures.join("; "))
    }

    /// Spawns the VM and waits until the node is up; on failure the VM is gone and the error
    /// holds the tail of its logs.
    fn launch(&self) -> Result<Child, String> {
        write_config(self.dir.path(), self.tls_port);
        let out_path = self.dir.path().join("server.out");
        let log_path = self
            .dir
            .path()
            .join("log")
            .join(format!("{}.log", self.node));
        let out_start = file_len(&out_path);
        let log_start = file_len(&log_path);
        let mut command = self.command("rabbitmq-server");
        command
            .stdin(Stdio::null())
            .stdout(log_file(&out_path))
            .stderr(log_file(&out_path));
        let mut child = spawn_tied(command, "rabbitmq-server");
        let started = Instant::now();
        let failure = match self.await_startup(&mut child, started) {
            Ok(()) => return Ok(child),
            Err(failure) => failure,
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "node {} (AMQP port {}, distribution port {}, epmd port {}): {failure}\n\
             --- {} ---\n{}\n--- {} ---\n{}",
            self.node,
            self.port,
            self.dist_port,
            self.epmd_port,
            out_path.display(),
            read_tail(&out_path, out_start),
            log_path.display(),
            read_tail(&log_path, log_start)
        ))
    }

    fn await_startup(&self, child: &mut Child, started: Instant) -> Result<(), String> {
        let mut listening = false;
        let mut last_ctl_error = String::new();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the VM exited with {status}"));
            }
            let elapsed = started.elapsed();
            if elapsed > STARTUP_TIMEOUT {
                return Err(format!(
                    "not up after {STARTUP_TIMEOUT:?}; last rabbitmqctl await_startup: \
                     {last_ctl_error}"
                ));
            }
            // Polling the port is cheap; each rabbitmqctl costs a second of CPU that the
            // booting node needs more.
            if !listening {
                listening = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
                if !listening {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
            let remaining = (STARTUP_TIMEOUT - elapsed).as_secs().max(1).to_string();
            let out = self.ctl_output(&["-q", "--timeout", &remaining, "await_startup"]);
            if out.status.success() {
                return Ok(());
            }
            last_ctl_error = format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the VM and epmd (SIGKILL) and reaps them.
    fn kill(&self) {
        for slot in [&self.server, &self.epmd] {
            if let Some(mut child) = lock(slot).take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// At normal exit: kill the shared node (before its files go) and delete its temp dir. Any
/// other death is covered by the death signal, which leaves only the temp dir behind.
extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(broker)) = SHARED.get() {
        for slot in [&broker.server, &broker.epmd] {
            // Never block at exit; a lock held by a thread still running is left to the
            // death signal.
            let mut guard = match slot.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            if let Some(mut child) = guard.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(broker.dir.path());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while the lock was held (a failed restart) leaves the slot consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ldap")
}

/// The node's config, written before each launch (the TLS port may change between attempts).
fn write_config(dir: &Path, tls_port: u16) {
    let fixtures = fixtures();
    let file = |name: &str| fixtures.join(name).display().to_string();
    // A disk alarm (default: under 50 MB free) would block every publisher; a test machine's
    // disk is not what the tests are about.
    let config = format!(
        "disk_free_limit.absolute = 1MB\nlog.file.level = info\n\
         listeners.ssl.default = 127.0.0.1:{tls_port}\n\
         ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
         ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
        file("ca.pem"),
        file("server.pem"),
        file("server.key"),
    );
    std::fs::write(dir.join("rabbitmq.conf"), config)
        .unwrap_or_else(|e| panic!("write rabbitmq.conf for the test RabbitMQ node: {e}"));
}

/// The config, cookie and empty plugin list the node reads from its temp dir.
fn write_files(dir: &Path) {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .unwrap_or_else(|e| panic!("write {name} for the test RabbitMQ node: {e}"))
    };
    write("enabled_plugins", "[].\n");
    write("advanced.config", "[].\n");
    write("rabbitmq-env.conf", "");
    let cookie = dir.join(".erlang.cookie");
    write(
        ".erlang.cookie",
        &format!("SCIMGATETEST{:016X}", random_u64()),
    );
    // Erlang refuses a cookie file others can read.
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
        .expect("chmod 400 the Erlang cookie");
}

/// `/usr/lib/rabbitmq/bin` (Debian), else the directory of `rabbitmq-server` on PATH.
fn find_bin() -> PathBuf {
    let has_scripts =
        |dir: &Path| dir.join("rabbitmq-server").is_file() && dir.join("rabbitmqctl").is_file();
    let debian = PathBuf::from("/usr/lib/rabbitmq/bin");
    if has_scripts(&debian) {
        return debian;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_scripts(&dir) {
                return dir;
            }
        }
    }
    panic!(
        "RabbitMQ (rabbitmq-server, rabbitmqctl) not found in /usr/lib/rabbitmq/bin or on PATH; \
         the tests need a real broker: apt-get install rabbitmq-server"
    );
}

/// A random free port in [`PORT_RANGE`] that no other node of this process was given.
fn pick_port() -> u16 {
    let mut taken = lock(&TAKEN_PORTS);
    let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
    for _ in 0..1000 {
        let port = PORT_RANGE.start + (random_u64() % span) as u16;
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
    panic!("no free port in {PORT_RANGE:?} on 127.0.0.1 for RabbitMQ");
}

fn random_u64() -> u64 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn log_file(path: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Stdio::from)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The last lines of `path` written after byte `from`.
fn read_tail(path: &Path, from: u64) -> String {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return format!("(not readable: {e})"),
    };
    let text = String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// In the child, before exec: SIGKILL when the thread that forked it ends.
fn die_with(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain syscalls.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl: then no signal would come.
        if libc::getppid() != parent {
            return Err(io::Error::other("the test process exited"));
        }
    }
    Ok(())
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` with a death signal, from the one thread that lives as long as the
/// process: `PR_SET_PDEATHSIG` fires when the thread that forked the child ends, and the test
/// thread that happens to start a node ends with its test.
fn spawn_tied(mut command: Command, what: &str) -> Child {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("rabbitmq-spawner".into())
            .spawn(move || {
                while let Ok((mut command, reply)) = incoming.recv() {
                    let _ = reply.send(command.spawn());
                }
                // Unreachable (the sender is a static), but this thread must never end.
                loop {
                    std::thread::park();
                }
            })
            .expect("start the thread that spawns RabbitMQ's processes");
        requests
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe { command.pre_exec(move || die_with(parent)) };
    let (reply, answer) = mpsc::channel();
    spawner
        .send((command, reply))
        .expect("the RabbitMQ spawner thread is running");
    answer
        .recv()
        .expect("the RabbitMQ spawner thread answers")
        .unwrap_or_else(|e| panic!("could not start {what}: {e}"))
}
