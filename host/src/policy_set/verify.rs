//! Verifying a signed policy set against the host's trust anchors.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::{Manifest, Signatures, module_names, read_bounded};
use super::{
    MANIFEST_FILE, MAX_MANIFEST_BYTES, MAX_SIGNATURES_BYTES, PolicySetError, SIGNATURES_FILE,
    SIGNING_CONTEXT,
};
use crate::keys::key_id;

/// The keys a host trusts to sign its policies, and how many must.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: BTreeMap<String, VerifyingKey>,
    min_signatures: usize,
}

impl Trust {
    /// Trust `keys`; `min_signatures` distinct ones must sign a set. No
    /// keys, a minimum of 0, a minimum no set could meet, or a weak
    /// (small-order) key is an error: verification is never switched off
    /// by an empty or impossible configuration.
    pub fn new(keys: Vec<VerifyingKey>, min_signatures: usize) -> Result<Trust, PolicySetError> {
        if keys.is_empty() {
            return Err(PolicySetError::Trust(
                "public-keys: at least one public key is required".into(),
            ));
        }
        if min_signatures == 0 {
            return Err(PolicySetError::Trust(
                "min-signatures: must be at least 1".into(),
            ));
        }
        let mut map = BTreeMap::new();
        for k in keys {
            if k.is_weak() {
                return Err(PolicySetError::Trust(format!(
                    "public-keys: key {} is a small-order point, which any signature verifies under",
                    key_id(&k)
                )));
            }
            map.insert(key_id(&k), k);
        }
        if min_signatures > map.len() {
            return Err(PolicySetError::Trust(format!(
                "min-signatures: {min_signatures} exceeds the {} distinct public keys",
                map.len()
            )));
        }
        Ok(Trust {
            keys: map,
            min_signatures,
        })
    }

    /// Read `files` (SPKI PEM, as `jitgate keygen` writes them).
    pub fn from_files(files: &[PathBuf], min_signatures: usize) -> Result<Trust, PolicySetError> {
        let keys = files
            .iter()
            .map(|f| crate::keys::read_public(f))
            .collect::<Result<Vec<_>, _>>()?;
        Trust::new(keys, min_signatures)
    }

    /// Ids of the trusted keys.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Distinct trusted keys that must sign.
    pub fn min_signatures(&self) -> usize {
        self.min_signatures
    }
}

/// One module of a verified set: its name and the bytes that were hashed.
#[derive(Debug, Clone)]
pub struct VerifiedModule {
    /// File name, as listed.
    pub name: String,
    /// The bytes whose sha256 and size matched the manifest.
    pub bytes: Arc<[u8]>,
}

/// A set that passed [`verify`], with its modules' bytes in memory.
#[derive(Debug, Clone)]
pub struct VerifiedSet {
    /// The folder it was read from (names errors and paths; never re-read).
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// Key ids of the trusted keys whose signatures verified.
    pub signers: Vec<String>,
    /// Every listed module, in manifest order.
    pub modules: Vec<VerifiedModule>,
}

impl VerifiedSet {
    /// What `inspect`, `GET /v1/policies` and the audit show about it.
    pub fn info(&self) -> SetInfo {
        SetInfo {
            digest: self.manifest.digest(),
            signed: true,
            version: Some(self.manifest.version.clone()),
            sequence: Some(self.manifest.sequence),
            signer: Some(self.manifest.signer.clone()),
            signers: self.signers.clone(),
            issued_at: Some(self.manifest.issued_at),
        }
    }
}

/// The policy set an engine runs: its digest always; version, sequence and
/// signers when it was a verified signed set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SetInfo {
    /// `sha256:<hex>`: of the manifest's canonical bytes for a signed set;
    /// for an unsigned one, of the manifest such a set would have (module
    /// names, digests, sizes) with no version, sequence or signer.
    pub digest: String,
    /// Whether it was verified against trusted keys.
    pub signed: bool,
    /// The manifest's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The manifest's sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The issuing key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Every trusted key whose signature verified.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// When it was signed, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub issued_at: Option<u64>,
}

impl SetInfo {
    /// The info of modules loaded without a manifest, from (file name,
    /// `sha256:<hex>` digest, size) of each.
    pub fn unsigned<'a>(modules: impl Iterator<Item = (&'a str, &'a str, u64)>) -> SetInfo {
        let mut entries: Vec<_> = modules
            .map(|(name, digest, size)| {
                serde_json::json!({
                    "name": name,
                    "sha256": digest.strip_prefix("sha256:").unwrap_or(digest),
                    "size": size,
                })
            })
            .collect();
        entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        // Keys of each entry are already in byte order and serde_json's
        // default map sorts; build the bytes by hand so the form does not
        // depend on serde_json's `preserve_order`.
        let mut bytes = b"{\"format\":\"jitgate-policy-set/1\",\"modules\":[".to_vec();
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(
                format!(
                    "{{\"name\":{},\"sha256\":{},\"size\":{}}}",
                    e["name"], e["sha256"], e["size"]
                )
                .as_bytes(),
            );
        }
        bytes.extend_from_slice(b"]}");
        SetInfo {
            digest: crate::policy::digest(&bytes),
            ..SetInfo::default()
        }
    }
}

/// Verify the set in `dir` against `trust`. `last_sequence` is the last
/// sequence this host (its store) accepted: a lower one is a rollback.
/// `max_module_bytes` bounds what is read of any module. On success the
/// module bytes are returned; load those, never the files.
pub fn verify(
    dir: &Path,
    trust: &Trust,
    last_sequence: Option<u64>,
    max_module_bytes: usize,
) -> Result<VerifiedSet, PolicySetError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let sig_path = dir.join(SIGNATURES_FILE);
    let too_big = |path: &Path, max: u64| PolicySetError::Malformed {
        path: path.to_path_buf(),
        field: "bytes".into(),
        message: format!("larger than {max} bytes"),
    };
    let manifest_bytes = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?.ok_or_else(|| {
        PolicySetError::Unsigned {
            path: manifest_path.clone(),
        }
    })?;
    if manifest_bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_big(&manifest_path, MAX_MANIFEST_BYTES));
    }
    let sig_bytes =
        read_bounded(&sig_path, MAX_SIGNATURES_BYTES)?.ok_or_else(|| PolicySetError::Unsigned {
            path: sig_path.clone(),
        })?;
    if sig_bytes.len() as u64 > MAX_SIGNATURES_BYTES {
        return Err(too_big(&sig_path, MAX_SIGNATURES_BYTES));
    }
    let manifest = Manifest::parse(&manifest_path, &manifest_bytes)?;
    let sigs = Signatures::parse(&sig_path, &sig_bytes)?;

    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(&manifest_bytes);
    let mut valid = BTreeSet::new();
    for entry in &sigs.signatures {
        let Some(key) = trust.keys.get(&entry.key_id) else {
            continue;
        };
        let bad = || PolicySetError::BadSignature {
            path: sig_path.clone(),
            key_id: entry.key_id.clone(),
        };
        let raw: [u8; 64] = hex::decode(&entry.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        // `verify_strict`: refuses a non-canonical `s` (malleated copies of
        // a signature) and small-order key components.
        key.verify_strict(&message, &Signature::from_bytes(&raw))
            .map_err(|_| bad())?;
        valid.insert(entry.key_id.clone());
    }
    if valid.is_empty() {
        return Err(PolicySetError::UntrustedSigner {
            path: sig_path,
            signed_by: sigs.signatures.iter().map(|s| s.key_id.clone()).collect(),
        });
    }
    if valid.len() < trust.min_signatures {
        return Err(PolicySetError::NotEnoughSignatures {
            path: sig_path,
            valid: valid.len(),
            required: trust.min_signatures,
        });
    }
    if !valid.contains(&manifest.signer) {
        return Err(PolicySetError::IssuerDidNotSign {
            path: manifest_path,
            signer: manifest.signer.clone(),
        });
    }
    if let Some(last) = last_sequence
        && manifest.sequence < last
    {
        return Err(PolicySetError::Rollback {
            path: manifest_path,
            sequence: manifest.sequence,
            last,
        });
    }

    let listed: BTreeSet<&str> = manifest.modules.iter().map(|m| m.name.as_str()).collect();
    if let Some((_, path)) = module_names(dir)?
        .into_iter()
        .find(|(name, _)| !listed.contains(name.as_str()))
    {
        return Err(PolicySetError::UnlistedModule { path });
    }
    let mut modules = Vec::with_capacity(manifest.modules.len());
    for m in &manifest.modules {
        let path = dir.join(&m.name);
        if m.size > max_module_bytes as u64 {
            return Err(PolicySetError::Malformed {
                path: manifest_path.clone(),
                field: format!("modules.{}.size", m.name),
                message: format!(
                    "{} bytes is over the module size limit of {max_module_bytes} (sandbox.max-module-bytes)",
                    m.size
                ),
            });
        }
        let bytes = read_bounded(&path, m.size)?
            .ok_or_else(|| PolicySetError::MissingModule { path: path.clone() })?;
        if bytes.len() as u64 != m.size {
            return Err(PolicySetError::SizeMismatch {
                path,
                expected: m.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != m.sha256 {
            return Err(PolicySetError::DigestMismatch {
                path,
                expected: m.sha256.clone(),
                actual,
            });
        }
        modules.push(VerifiedModule {
            name: m.name.clone(),
            bytes: bytes.into(),
        });
    }
    Ok(VerifiedSet {
        dir: dir.to_path_buf(),
        manifest,
        signers: valid.into_iter().collect(),
        modules,
    })
}
