//! Callback secrets and header values at rest: sealed with XChaCha20-Poly1305
//! before they reach the store, opened only by the sender just before it
//! signs and sends a delivery.
//!
//! A copy of the database (a backup, a stolen disk image, a support bundle)
//! then holds no usable signing key: the key lives in its own file, `0600`,
//! beside the database (or wherever `--callback-key-file` says). The secret
//! must be kept (not cleared after delivery) because `POST /v1/jobs/{id}/retry`
//! runs the job again and its callback is signed again. Each sealed value is
//! bound to the job or batch id it belongs to (associated data), so a sealed
//! secret copied to another row does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Marks a sealed value (format version 1: hex of nonce || ciphertext).
const PREFIX: &str = "enc:v1:";
/// XChaCha20 nonce length: random nonces never repeat in practice.
const NONCE_LEN: usize = 24;

/// Seals and opens callback secrets with the server's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

/// A stored secret that cannot be opened (the key changed, or the row was altered).
#[derive(Debug, thiserror::Error)]
#[error("the stored callback secret cannot be decrypted with this server's key")]
pub struct OpenError;

impl SecretBox {
    /// A box with a fresh random key held only in memory (for in-memory databases).
    pub fn ephemeral() -> Self {
        Self { cipher: XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng)) }
    }

    /// A box with the key given as 64 hex digits (the operator's
    /// `WASMQ_SECRETS_KEY` or `--secrets-key-file`); the error never shows the key.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let key = hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| "the key must be 64 hex digits (32 bytes)".to_string())?;
        Ok(Self { cipher: XChaCha20Poly1305::new_from_slice(&key).expect("32-byte key") })
    }

    /// Reads the key from `path` (64 hex digits), creating the file with a
    /// fresh random key and mode `0600` if it does not exist. A key file that
    /// others can read is refused.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let text = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(mut file) => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                let text = hex::encode(key);
                file.write_all(format!("{text}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing the callback key file {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the callback secret key file");
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mode = std::fs::metadata(path)
                    .with_context(|| format!("reading the callback key file {}", path.display()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "the callback key file {} is readable by other users (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    );
                }
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the callback key file {}", path.display()))?
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating the callback key file {}", path.display()));
            }
        };
        let key = hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .with_context(|| format!("the callback key file {} must hold 64 hex digits", path.display()))?;
        Ok(Self { cipher: XChaCha20Poly1305::new_from_slice(&key).expect("32-byte key") })
    }

    /// The server's box: the key from `key_file` if given, else from
    /// `<database file>.callback-key` beside a SQLite database file, else (an
    /// in-memory database, whose rows die with the process) a key in memory.
    /// A database server (PostgreSQL) needs `key_file`: a key of this node's
    /// own would leave the callbacks it sealed undeliverable by the others,
    /// and by itself after a restart.
    pub fn for_database(key_file: Option<&Path>, database_url: &str) -> anyhow::Result<Self> {
        if let Some(path) = key_file {
            return Self::load_or_create(path);
        }
        match sqlite_file(database_url) {
            Some(db) => {
                let mut path = db.into_os_string();
                path.push(".callback-key");
                Self::load_or_create(Path::new(&path))
            }
            None if database_url.starts_with("sqlite:") => Ok(Self::ephemeral()),
            None => anyhow::bail!(
                "a PostgreSQL database needs --callback-key-file (WASMQ_CALLBACK_KEY_FILE or \
                 `callback_key_file`): the key that seals callback secrets, the same file on every node \
                 (created with mode 0600 if missing)"
            ),
        }
    }

    /// Seals `secret` for the job or batch `owner_id`.
    pub fn seal(&self, secret: &str, owner_id: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: owner_id.as_bytes() })
            .expect("encrypting in memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", hex::encode(out))
    }

    /// Opens a value sealed for `owner_id`. A value without the sealed prefix
    /// was stored by a version before encryption and is returned as it is.
    pub fn open(&self, stored: &str, owner_id: &str) -> Result<String, OpenError> {
        let Some(hexed) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = hex::decode(hexed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: owner_id.as_bytes() })
            .map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

/// The file of a `sqlite:` URL, `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_sits_beside_the_database() {
        assert_eq!(sqlite_file("sqlite://wasmq.db"), Some("wasmq.db".into()));
        assert_eq!(sqlite_file("sqlite:///var/lib/wasmq/q.db?mode=rwc"), Some("/var/lib/wasmq/q.db".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        SecretBox::for_database(None, &url).unwrap();
        assert!(dir.path().join("w.db.callback-key").exists());
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_owner() {
        let vault = SecretBox::ephemeral();
        let sealed = vault.seal("s3cret", "job-1");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("s3cret"));
        assert_ne!(sealed, vault.seal("s3cret", "job-1"), "fresh nonce per seal");
        assert_eq!(vault.open(&sealed, "job-1").unwrap(), "s3cret");
        assert!(vault.open(&sealed, "job-2").is_err(), "bound to its row");
        assert!(SecretBox::ephemeral().open(&sealed, "job-1").is_err(), "another key");
        assert!(vault.open("enc:v1:zz", "job-1").is_err());
        assert_eq!(vault.open("legacy-plain", "job-1").unwrap(), "legacy-plain");
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callback.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = first.seal("x", "b");
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, "b").unwrap(), "x", "the same key after a restart");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretBox::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err());
    }
}
