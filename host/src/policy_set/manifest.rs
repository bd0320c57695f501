//! The manifest and signatures files: their shape, canonical bytes and
//! the checks made before any signature is looked at.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{MAX_MODULES, MAX_SIGNATURES, PolicySetError};

/// The manifest's `format`: bumped if its meaning ever changes.
pub const FORMAT: &str = "jitgate-policy-set/1";

/// What a signed policy set contains. Fields are declared in byte order of
/// their names, which is the order serde writes them in: the serialisation
/// is the canonical form whatever features serde_json was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// When the set was signed, Unix seconds.
    pub issued_at: u64,
    /// Every module of the set, sorted by file name.
    pub modules: Vec<ModuleEntry>,
    /// Monotonic: a host refuses a set whose sequence is lower than the
    /// last one it accepted.
    pub sequence: u64,
    /// Key id ([`crate::keys::key_id`]) of the key that issued the set; it
    /// must be among the valid signatures.
    pub signer: String,
    /// The set's version, as its authors name it.
    pub version: String,
}

/// One module of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ModuleEntry {
    /// File name in the set's folder: `[A-Za-z0-9._-]`, ending `.wasm`, no
    /// leading dot, never a path.
    pub name: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// The signatures file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Signatures {
    /// One per signing key.
    pub signatures: Vec<SignatureEntry>,
}

/// One Ed25519 signature over the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignatureEntry {
    /// [`crate::keys::key_id`] of the signing key.
    pub key_id: String,
    /// 64 bytes, lower-case hex.
    pub signature: String,
}

fn malformed(path: &Path, field: impl Into<String>, message: impl Into<String>) -> PolicySetError {
    PolicySetError::Malformed {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A module file name a manifest may list: a plain name in the set's own
/// folder. Anything that could reach outside it (`../x.wasm`, `/etc/x.wasm`,
/// `a/b.wasm`, `C:\x.wasm`) or hide (`.x.wasm`) is refused.
pub fn check_module_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("`{}` must be 1-255 bytes", name.escape_debug()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "`{}` is not a plain file name (only [A-Za-z0-9._-]; no paths)",
            name.escape_debug()
        ));
    }
    if name.starts_with('.') {
        return Err(format!("`{name}` starts with a dot"));
    }
    if !name.ends_with(".wasm") || name.len() == ".wasm".len() {
        return Err(format!("`{name}` does not end in .wasm"));
    }
    Ok(())
}

/// Whether a directory entry looks like a policy module (any case of
/// `.wasm`: on a case-insensitive file system `X.WASM` is a module too).
pub(super) fn looks_like_module(name: &str) -> bool {
    name.len() >= 5 && name[name.len() - 5..].eq_ignore_ascii_case(".wasm")
}

impl Manifest {
    /// The canonical bytes: what the file holds and what is signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `sha256:<hex>` of the canonical bytes: the set's digest, which every
    /// decision's audit record names.
    pub fn digest(&self) -> String {
        crate::policy::digest(&self.to_bytes())
    }

    /// Parse and check manifest bytes read from `path`: well-formed,
    /// canonical, safe and unique names, sorted.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, PolicySetError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| malformed(path, "bytes", format!("not a manifest: {e}")))?;
        if m.to_bytes() != bytes {
            return Err(malformed(
                path,
                "bytes",
                "not in canonical form (keys sorted, no whitespace, as `jitgate sign` writes it); \
                 it was edited after signing",
            ));
        }
        m.check()
            .map_err(|(field, msg)| malformed(path, field, msg))?;
        Ok(m)
    }

    /// Field checks, naming the field.
    pub fn check(&self) -> Result<(), (String, String)> {
        let f = |field: &str, msg: String| Err((field.to_string(), msg));
        if self.format != FORMAT {
            return f(
                "format",
                format!("`{}` is not `{FORMAT}`", self.format.escape_debug()),
            );
        }
        if self.version.is_empty()
            || self.version.len() > 64
            || self
                .version
                .chars()
                .any(crate::policy::sandbox::needs_escape)
        {
            return f(
                "version",
                "must be 1-64 bytes without control characters".into(),
            );
        }
        if self.sequence > i64::MAX as u64 {
            return f("sequence", format!("must be at most {}", i64::MAX));
        }
        if !is_hex(&self.signer, 16) {
            return f(
                "signer",
                "must be a key id (16 lower-case hex digits)".into(),
            );
        }
        if self.modules.is_empty() || self.modules.len() > MAX_MODULES {
            return f(
                "modules",
                format!(
                    "lists {} modules; 1..={MAX_MODULES} allowed",
                    self.modules.len()
                ),
            );
        }
        let mut folded = BTreeSet::new();
        for (i, m) in self.modules.iter().enumerate() {
            check_module_name(&m.name).or_else(|e| f(&format!("modules[{i}].name"), e))?;
            if !folded.insert(m.name.to_ascii_lowercase()) {
                return f(
                    &format!("modules[{i}].name"),
                    format!(
                        "`{}` is listed twice (names are compared ignoring case)",
                        m.name
                    ),
                );
            }
            if i > 0 && self.modules[i - 1].name >= m.name {
                return f(
                    &format!("modules[{i}].name"),
                    "modules must be sorted by name".into(),
                );
            }
            if !is_hex(&m.sha256, 64) {
                return f(
                    &format!("modules[{i}].sha256"),
                    "must be 64 lower-case hex digits".into(),
                );
            }
            if m.size == 0 {
                return f(&format!("modules[{i}].size"), "must be at least 1".into());
            }
        }
        Ok(())
    }
}

impl Signatures {
    /// Parse and check the signatures file read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Signatures, PolicySetError> {
        let s: Signatures = serde_json::from_slice(bytes)
            .map_err(|e| malformed(path, "bytes", format!("not a signatures file: {e}")))?;
        if s.signatures.len() > MAX_SIGNATURES {
            return Err(malformed(
                path,
                "signatures",
                format!("{} entries; at most {MAX_SIGNATURES}", s.signatures.len()),
            ));
        }
        for (i, e) in s.signatures.iter().enumerate() {
            if !is_hex(&e.key_id, 16) {
                return Err(malformed(
                    path,
                    format!("signatures[{i}].key-id"),
                    "must be 16 lower-case hex digits",
                ));
            }
            if !is_hex(&e.signature, 128) {
                return Err(malformed(
                    path,
                    format!("signatures[{i}].signature"),
                    "must be 128 lower-case hex digits (64 bytes)",
                ));
            }
        }
        Ok(s)
    }

    /// The file's bytes (pretty: it is not signed, and people read it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Read at most `max` bytes of `path` (one more tells "too long");
/// `Ok(None)` when it does not exist.
pub(super) fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, PolicySetError> {
    let io = |source| PolicySetError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Only regular files (or links to one): opening a FIFO planted under a
    // listed name would block the reload forever.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(io(std::io::Error::other("not a regular file"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(Some(bytes))
}

/// Names of the entries of `dir` that look like modules, sorted.
pub(super) fn module_names(dir: &Path) -> Result<Vec<(String, PathBuf)>, PolicySetError> {
    let io = |source| PolicySetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if looks_like_module(&name) {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}
