//! Secrets at rest: credentials stored in the database (targets created through the admin API)
//! are sealed with AES-256-GCM under a key kept outside it, from the crypto stack already in
//! the tree (aws-lc-rs). A sealed value reads `enc:v1:KEYID:BASE64(nonce ‖ ciphertext ‖ tag)`,
//! bound to where it is stored (the AAD names the target and field), so it cannot be moved.
//!
//! The key is a file holding 32 random bytes in base64 (`secret_key_file`, or
//! `SCIMGATE_SECRET_KEY_FILE`). On SQLite without one, `DATABASE.key` beside the database is
//! used, and created (mode 0600) on first start. On PostgreSQL without one, nothing new can be
//! sealed, and the API says how to set a key. `FILE.next` and `FILE.previous` are read too, so
//! values sealed with either open while a rotation ([`rotate`]) is under way or after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::connection::{sqlite_path, Backend};

const PREFIX: &str = "enc:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no secret key is configured, so secrets cannot be stored: set secret_key_file \
         (SCIMGATE_SECRET_KEY_FILE) to a file holding 32 random bytes in base64, e.g. \
         `openssl rand -base64 32 > scimgate.key; chmod 600 scimgate.key`"
    )]
    NoKey,
    #[error("a stored secret was sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("a stored secret does not open with its key: it was altered or moved")]
    Tampered,
    #[error("secret key file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
}

struct Key {
    /// The first bytes of the key's SHA-256, in hex: which key sealed a value.
    id: String,
    key: LessSafeKey,
}

impl Key {
    fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Some(Key {
            id,
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The keys secrets are sealed and opened with.
#[derive(Default)]
pub struct SecretBox {
    /// Seals new values; `None`: secrets cannot be stored.
    current: Option<Key>,
    /// Also open values (a rotation's previous or next key).
    others: Vec<Key>,
    /// Where the current key lives, for a rotation.
    file: Option<PathBuf>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("key", &self.current.as_ref().map(|k| k.id.clone()))
            .field("file", &self.file)
            .finish()
    }
}

impl SecretBox {
    /// The keys for a database: `key_file` when given; on SQLite `DATABASE.key`, created when
    /// missing; on PostgreSQL none.
    pub fn for_database(url: &str, key_file: Option<&Path>) -> Result<SecretBox, SecretError> {
        let file = match (key_file, Backend::of_url(url)) {
            (Some(file), _) => file.to_path_buf(),
            (None, Backend::Sqlite) => {
                let file = PathBuf::from(format!("{}.key", sqlite_path(url)));
                if !file.exists() {
                    write_new_key(&file)?;
                }
                file
            }
            (None, Backend::Postgres) => return Ok(SecretBox::default()),
        };
        SecretBox::from_file(file)
    }

    /// The key in `file`, with its rotation siblings (`.next`, `.previous`) when present.
    fn from_file(file: PathBuf) -> Result<SecretBox, SecretError> {
        let current = read_key(&file)?;
        let others = ["next", "previous"]
            .iter()
            .map(|suffix| sibling(&file, suffix))
            .filter(|path| path.exists())
            .map(|path| read_key(&path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SecretBox {
            current: Some(current),
            others,
            file: Some(file),
        })
    }

    /// Seals `plain`, bound to `context` (where it is stored).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, SecretError> {
        let key = self.current.as_ref().ok_or(SecretError::NoKey)?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretError::Tampered)?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Ok(format!("{PREFIX}{}:{}", key.id, STANDARD.encode(out)))
    }

    /// Opens a value [`SecretBox::seal`] made with `context`. A value stored before secrets
    /// were sealed (no `enc:v1:` prefix) is returned as it is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').ok_or(SecretError::Tampered)?;
        let key = self
            .current
            .iter()
            .chain(&self.others)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let bytes = STANDARD.decode(data).map_err(|_| SecretError::Tampered)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Tampered);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Tampered)?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Tampered)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Tampered)
    }

    /// Whether `stored` is sealed with the current key.
    pub fn is_current(&self, stored: &str) -> bool {
        match (&self.current, stored.strip_prefix(PREFIX)) {
            (Some(key), Some(rest)) => rest.starts_with(&format!("{}:", key.id)),
            _ => false,
        }
    }
}

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", file.display()))
}

fn key_error(path: &Path, why: impl std::fmt::Display) -> SecretError {
    SecretError::KeyFile {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn read_key(path: &Path) -> Result<Key, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| key_error(path, "not base64"))?;
    if bytes.len() != 32 {
        return Err(key_error(path, "a key is 32 bytes (base64)"));
    }
    Key::from_bytes(&bytes).ok_or_else(|| key_error(path, "not an AES-256 key"))
}

/// Writes a new random key to `path`, readable by its owner only.
fn write_new_key(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::OpenOptionsExt;
    let key: [u8; 32] = rand::random();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_error(path, e))?;
    file.write_all(STANDARD.encode(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_error(path, e))
}

/// Replaces the key: a new one is written to `FILE.next`, `reseal` seals every stored secret
/// with it (in one transaction, given a box holding both keys), and only then does it become
/// `FILE` (the old one kept as `FILE.previous`). A crash at any point leaves every value
/// openable. Answers what `reseal` answered.
pub fn rotate<T, E: From<SecretError>>(
    current: &SecretBox,
    reseal: impl FnOnce(&SecretBox) -> Result<T, E>,
) -> Result<T, E> {
    let file = current.file.clone().ok_or(SecretError::NoKey)?;
    let next = sibling(&file, "next");
    // A rotation that stopped before its end is finished with the key it had written.
    if !next.exists() {
        write_new_key(&next)?;
    }
    // Seals with the new key, opens with either.
    let both = SecretBox {
        current: Some(read_key(&next)?),
        others: vec![read_key(&file)?],
        file: Some(file.clone()),
    };
    let answer = reseal(&both)?;
    let previous = sibling(&file, "previous");
    std::fs::rename(&file, &previous).map_err(|e| key_error(&file, e))?;
    std::fs::rename(&next, &file).map_err(|e| key_error(&next, e))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_bound_to_their_place_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let secrets = SecretBox::for_database(&url, None).expect("box");
        let key_file = dir.path().join("db.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key_file)
                .expect("key file")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let sealed = secrets.seal("s3cret", "crm/token").expect("seal");
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("s3cret"));
        assert_ne!(sealed, secrets.seal("s3cret", "crm/token").expect("seal"));
        assert_eq!(secrets.open(&sealed, "crm/token").expect("open"), "s3cret");
        assert!(matches!(
            secrets.open(&sealed, "other/token"),
            Err(SecretError::Tampered)
        ));
        assert_eq!(
            secrets.open("legacy", "crm/token").expect("plain"),
            "legacy"
        );
        // Another key cannot open it; the same file can, after a restart.
        let again = SecretBox::for_database(&url, None).expect("box");
        assert_eq!(again.open(&sealed, "crm/token").expect("open"), "s3cret");
        let other = SecretBox::for_database(
            "sqlite:///elsewhere",
            Some(&{
                let f = dir.path().join("other.key");
                write_new_key(&f).expect("key");
                f
            }),
        )
        .expect("box");
        assert!(matches!(
            other.open(&sealed, "crm/token"),
            Err(SecretError::UnknownKey(_))
        ));
        // No key: nothing can be sealed.
        let none = SecretBox::for_database("postgres://x/y", None).expect("box");
        assert!(matches!(none.seal("x", "y"), Err(SecretError::NoKey)));
    }

    #[test]
    fn rotation_reseals_and_keeps_old_values_openable() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let before = SecretBox::for_database(&url, None).expect("box");
        let old = before.seal("v", "t/token").expect("seal");
        let resealed = rotate(&before, |both| -> Result<String, SecretError> {
            let plain = both.open(&old, "t/token")?;
            both.seal(&plain, "t/token")
        })
        .expect("rotate");
        let after = SecretBox::for_database(&url, None).expect("box");
        assert!(after.is_current(&resealed));
        assert!(!after.is_current(&old));
        assert_eq!(after.open(&resealed, "t/token").expect("open"), "v");
        assert_eq!(after.open(&old, "t/token").expect("previous key"), "v");
    }
}
