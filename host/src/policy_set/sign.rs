//! `jitgate sign`: write (or co-sign) a folder's manifest.

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

use super::manifest::{
    FORMAT, Manifest, ModuleEntry, SignatureEntry, Signatures, check_module_name, module_names,
    read_bounded,
};
use super::{
    MANIFEST_FILE, MAX_MANIFEST_BYTES, MAX_SIGNATURES_BYTES, PolicySetError, SIGNATURES_FILE,
    SIGNING_CONTEXT,
};
use crate::keys::key_id;

/// What to put in a new manifest.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// The set's version (default: the sequence, as text).
    pub version: Option<String>,
    /// The sequence (default: one more than the folder's current
    /// manifest's, or 1).
    pub sequence: Option<u64>,
    /// Issued-at, Unix seconds.
    pub now: u64,
}

/// What [`sign`] did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The manifest now in the folder.
    pub manifest: Manifest,
    /// The key that signed.
    pub key_id: String,
    /// The manifest was already there, for the same modules, and this key
    /// added its signature to those present (a co-signature).
    pub cosigned: bool,
    /// Signature entries now in the file.
    pub signatures: usize,
}

/// Sign the modules in `dir` with `key`. If the folder's manifest already
/// lists exactly these modules (and `opts` asks for no other version or
/// sequence), the signature is added beside the existing ones: that is how
/// several keys sign one set. Otherwise a new manifest is written, and
/// every old signature (over other bytes) is dropped.
pub fn sign(dir: &Path, key: &SigningKey, opts: &SignOptions) -> Result<Signed, PolicySetError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicySetError::Io { path, source }
    };
    let mut modules = Vec::new();
    for (name, path) in module_names(dir)? {
        check_module_name(&name).map_err(|message| PolicySetError::Malformed {
            path: path.clone(),
            field: "name".into(),
            message,
        })?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        modules.push(ModuleEntry {
            name,
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        });
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let sig_path = dir.join(SIGNATURES_FILE);
    let existing = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?
        .and_then(|b| Manifest::parse(&manifest_path, &b).ok());
    let id = key_id(&key.verifying_key());
    let same_set = existing.as_ref().filter(|m| {
        m.modules == modules
            && opts.version.as_ref().is_none_or(|v| *v == m.version)
            && opts.sequence.is_none_or(|s| s == m.sequence)
    });
    let (manifest, mut sigs, cosigned) = match same_set {
        Some(m) => {
            let sigs = read_bounded(&sig_path, MAX_SIGNATURES_BYTES)?
                .and_then(|b| Signatures::parse(&sig_path, &b).ok())
                .unwrap_or_default();
            (m.clone(), sigs, true)
        }
        None => {
            let sequence = opts
                .sequence
                .or_else(|| existing.as_ref().map(|m| m.sequence.saturating_add(1)))
                .unwrap_or(1);
            let m = Manifest {
                format: FORMAT.into(),
                issued_at: opts.now,
                modules,
                sequence,
                signer: id.clone(),
                version: opts.version.clone().unwrap_or_else(|| sequence.to_string()),
            };
            m.check()
                .map_err(|(field, message)| PolicySetError::Malformed {
                    path: manifest_path.clone(),
                    field,
                    message,
                })?;
            (m, Signatures::default(), false)
        }
    };
    let bytes = manifest.to_bytes();
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(&bytes);
    let signature = hex::encode(key.sign(&message).to_bytes());
    sigs.signatures.retain(|s| s.key_id != id);
    sigs.signatures.push(SignatureEntry {
        key_id: id.clone(),
        signature,
    });
    if !cosigned {
        write_atomic(&manifest_path, &bytes)?;
    }
    write_atomic(&sig_path, &sigs.to_bytes())?;
    Ok(Signed {
        manifest,
        key_id: id,
        cosigned,
        signatures: sigs.signatures.len(),
    })
}

/// Write-then-rename, so a host watching the folder never reads half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PolicySetError> {
    let io = |source| PolicySetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
