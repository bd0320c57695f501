//! Ed25519 key files: what `jitgate keygen` writes and what audit
//! checkpoints are signed and verified with.
//!
//! The secret key is PKCS#8 PEM and the public key SPKI PEM, the formats
//! `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` use, so
//! keys made elsewhere work here. The secret file is created 0600 and never
//! overwritten.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// A key file problem, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &Path, message: impl std::fmt::Display) -> KeyError {
    KeyError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A fresh key from the OS's randomness.
pub fn generate() -> Result<SigningKey, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Write a fresh key pair: `secret` (0600) and `public`. Refuses to
/// overwrite either file: losing a signing key loses what it vouched for.
pub fn keygen(secret: &Path, public: &Path) -> Result<VerifyingKey, KeyError> {
    for p in [secret, public] {
        if p.exists() {
            return Err(err(p, "already exists; not overwriting a key"));
        }
    }
    let key = generate().map_err(|e| err(secret, e))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| err(secret, e))?;
    write_new(secret, pem.as_bytes(), 0o600)?;
    let verifying = key.verifying_key();
    let pub_pem = verifying
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| err(public, e))?;
    write_new(public, pub_pem.as_bytes(), 0o644)?;
    Ok(verifying)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| err(path, e))?;
    f.write_all(bytes).map_err(|e| err(path, e))?;
    f.sync_all().map_err(|e| err(path, e))
}

/// Read a secret key (PKCS#8 PEM).
pub fn read_secret(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| err(path, format!("not an Ed25519 secret key (PKCS#8 PEM): {e}")))
}

/// Read a public key (SPKI PEM).
pub fn read_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| err(path, format!("not an Ed25519 public key (SPKI PEM): {e}")))
}

/// A short name for a public key: the first 16 hex digits of the sha256
/// of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_pair_that_reads_back_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, p) = (dir.path().join("k.pem"), dir.path().join("k.pub.pem"));
        let vk = keygen(&s, &p).expect("keygen");
        assert_eq!(read_secret(&s).expect("secret").verifying_key(), vk);
        assert_eq!(read_public(&p).expect("public"), vk);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&s).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&s).expect("read");
        let e = keygen(&s, &dir.path().join("other.pem")).expect_err("overwrite");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&s).expect("read"), before);
        // A public key is not a secret key, and says so naming the file.
        let e = read_secret(&p).expect_err("wrong kind");
        assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
    }
}
