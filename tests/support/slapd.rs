//! A throwaway OpenLDAP `slapd` for one test: the Debian package's binary and schemas (core,
//! cosine, inetorgperson, nis), an `mdb` database in a temp dir, on a free loopback port. The
//! directory is read back with `ldapsearch` (ldap-utils), a client independent of scimgate's.
//!
//! slapd runs in the foreground (`-d 0`) as a child of the thread that started it, with
//! `PR_SET_PDEATHSIG`, so it never outlives the test; `Drop` stops it. Both packages must be
//! installed (`apt-get install slapd ldap-utils`); there is no skipping.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "test-slapd-pw-7f3a";
const SCHEMAS: [&str; 4] = ["core", "cosine", "inetorgperson", "nis"];
const MODULE_DIR: &str = "/usr/lib/ldap";
const SCHEMA_DIR: &str = "/etc/ldap/schema";

pub struct Slapd {
    pub port: u16,
    /// The `ldaps://` port, when started with TLS.
    pub tls_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: bool,
}

/// One entry as `ldapsearch` printed it; attribute names lower-cased.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dn: String,
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl Entry {
    pub fn values(&self, name: &str) -> Vec<String> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.values(name).into_iter().next()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ldap")
}

impl Slapd {
    /// A running server holding the suffix with `ou=people` and `ou=groups`.
    pub fn start() -> Slapd {
        Slapd::start_with(false)
    }

    /// Like [`Slapd::start`], with StartTLS available (certificate for 127.0.0.1 and
    /// localhost, signed by `tests/fixtures/ldap/ca.pem`).
    pub fn start_tls() -> Slapd {
        Slapd::start_with(true)
    }

    pub fn ca_file() -> PathBuf {
        fixtures().join("ca.pem")
    }

    fn start_with(tls: bool) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("db")).expect("db dir");
        let mut server = Slapd {
            port: 0,
            tls_port: 0,
            dir,
            child: None,
            tls,
        };
        server.write_config();
        server.launch();
        server.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"
        ));
        server
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://localhost:PORT` (the certificate names localhost and 127.0.0.1).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.tls_port)
    }

    fn write_config(&self) {
        let mut conf = String::new();
        for schema in SCHEMAS {
            conf.push_str(&format!("include {SCHEMA_DIR}/{schema}.schema\n"));
        }
        conf.push_str(&format!(
            "pidfile {dir}/slapd.pid\nmodulepath {MODULE_DIR}\nmoduleload back_mdb\n\
             sizelimit unlimited\nloglevel 0\n",
            dir = self.dir.path().display()
        ));
        if self.tls {
            let f = fixtures();
            conf.push_str(&format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                f.join("ca.pem").display(),
                f.join("server.pem").display(),
                f.join("server.key").display()
            ));
        }
        conf.push_str(&format!(
            "database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\ndirectory {dir}/db\ndbnosync\n\
             index objectClass eq\nindex uid,cn,mail eq\nindex member,uniqueMember,memberUid eq\n\
             index uidNumber,gidNumber eq\n",
            dir = self.dir.path().display()
        ));
        std::fs::write(self.dir.path().join("slapd.conf"), conf).expect("write slapd.conf");
    }

    /// Starts slapd on a fresh port (or the same port again after [`Slapd::stop`]).
    fn launch(&mut self) {
        let mut last_error = String::new();
        for _ in 0..5 {
            let free_port = || {
                TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("free port")
            };
            let port = if self.port != 0 {
                self.port
            } else {
                free_port()
            };
            if self.tls && self.tls_port == 0 {
                self.tls_port = free_port();
            }
            let mut listeners = format!("ldap://127.0.0.1:{port}/");
            if self.tls {
                listeners.push_str(&format!(" ldaps://127.0.0.1:{}/", self.tls_port));
            }
            let mut command = Command::new("/usr/sbin/slapd");
            command
                .args(["-d", "0", "-f"])
                .arg(self.dir.path().join("slapd.conf"))
                .args(["-h", &listeners])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(self.dir.path().join("slapd.log"))
                        .map(Stdio::from)
                        .unwrap_or_else(|_| Stdio::null()),
                );
            // SAFETY: prctl is async-signal-safe; it ties slapd's life to this thread.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                    Ok(())
                });
            }
            let mut child = command.spawn().expect("slapd runs (apt-get install slapd)");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    self.port = port;
                    self.child = Some(child);
                    return;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!(
                        "slapd exited with {status}: {}",
                        std::fs::read_to_string(self.dir.path().join("slapd.log"))
                            .unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = "slapd did not start listening in 20 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("slapd failed to start: {last_error}");
    }

    /// Stops the server (the data stays); [`Slapd::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(name);
        command.args([
            "-x",
            "-H",
            &self.url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ]);
        command
    }

    fn feed(&self, tool: &str, extra: &[&str], ldif: &str) {
        let mut child = self
            .tool(tool)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldap-utils installed");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("ldap tool finished");
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ldapadd` of the entries in `ldif`.
    pub fn add(&self, ldif: &str) {
        self.feed("ldapadd", &[], ldif);
    }

    /// `ldapmodify` with `ldif` (changetype records).
    pub fn modify(&self, ldif: &str) {
        self.feed("ldapmodify", &[], ldif);
    }

    /// `ldapadd -c -f FILE`: the time a plain client takes to add these entries.
    pub fn add_file(&self, path: &Path) -> Duration {
        let started = Instant::now();
        let out = self
            .tool("ldapadd")
            .arg("-f")
            .arg(path)
            .stdout(Stdio::null())
            .output()
            .expect("ldapadd runs");
        assert!(
            out.status.success(),
            "ldapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }

    /// `ldapsearch` below `base` (subtree) for `filter`; all user attributes.
    pub fn search(&self, base: &str, filter: &str) -> Vec<Entry> {
        let out = self
            .tool("ldapsearch")
            .args(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter])
            .output()
            .expect("ldapsearch runs");
        // 32: no such object (the base is missing): no entries.
        if out.status.code() == Some(32) {
            return Vec::new();
        }
        assert!(
            out.status.success(),
            "ldapsearch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_ldif(&String::from_utf8_lossy(&out.stdout))
    }

    pub fn entry(&self, dn: &str) -> Option<Entry> {
        let out = self
            .tool("ldapsearch")
            .args([
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-s",
                "base",
                "-b",
                dn,
                "(objectClass=*)",
            ])
            .output()
            .expect("ldapsearch runs");
        if out.status.code() == Some(32) {
            return None;
        }
        parse_ldif(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .next()
    }

    /// The entries with `uid` = `uid` anywhere in the directory.
    pub fn users_named(&self, uid: &str) -> Vec<Entry> {
        self.search(SUFFIX, &format!("(uid={uid})"))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Unwrapped `-LLL` LDIF: `name: value` and `name:: base64` lines, blank lines between entries.
fn parse_ldif(text: &str) -> Vec<Entry> {
    use base64::Engine;
    let mut entries = Vec::new();
    for block in text.split("\n\n") {
        let mut dn = None;
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, value) = if let Some((n, v)) = line.split_once(":: ") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .unwrap_or_default();
                (n, String::from_utf8_lossy(&bytes).into_owned())
            } else if let Some((n, v)) = line.split_once(": ") {
                (n, v.to_string())
            } else {
                continue;
            };
            if name.eq_ignore_ascii_case("dn") {
                dn = Some(value);
            } else {
                attributes
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(value);
            }
        }
        if let Some(dn) = dn {
            entries.push(Entry { dn, attributes });
        }
    }
    entries
}
