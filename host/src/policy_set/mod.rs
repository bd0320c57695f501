//! Signed policy sets: a folder of policy modules shipped with a manifest
//! and Ed25519 signatures, so a host loads only what its security team
//! signed.
//!
//! Two files sit beside the modules:
//!
//! * [`MANIFEST_FILE`] (`policy-set.json`): every module's file name,
//!   sha256 and size, the set's version, a monotonic `sequence`, when it was
//!   issued and the id of the key that issued it. The file *is* its
//!   canonical form (keys sorted, no whitespace, see [`Manifest::to_bytes`]):
//!   a manifest whose bytes differ from the canonical serialisation of what
//!   they parse to is refused, so no two parsers can read one signed file
//!   two ways.
//! * [`SIGNATURES_FILE`] (`policy-set.sig`): one JSON document holding any
//!   number of `{key-id, signature}` entries, each an Ed25519 signature
//!   (hex) over [`SIGNING_CONTEXT`] followed by the manifest bytes. `jitgate
//!   sign` by a second key adds an entry instead of rewriting the manifest,
//!   which is how `min-signatures` > 1 is met. Entries by keys the verifier
//!   does not trust are ignored; a trusted key's entry that does not verify
//!   refuses the set; one key counts once however many entries name it.
//!
//! [`verify`] checks in this order, and stops at the first failure: both
//! files present; manifest canonical and well-formed (safe, unique file
//! names); enough distinct trusted signatures (`verify_strict`: no
//! non-canonical `s`, no small-order keys) including the issuer's; sequence
//! not below the last accepted one; no `.wasm` in the folder the manifest
//! does not list; every listed module present with its size and digest. It
//! returns the module bytes it hashed: the engine compiles exactly those
//! ([`crate::Engine::load_set`]) and never reads the files again, so a module
//! swapped on disk after verification is never run. The compile cache is
//! keyed by the digest of those bytes (and HMAC-authenticated), so a
//! tampered cache cannot substitute code either.

mod manifest;
mod sign;
#[cfg(test)]
mod tests;
mod verify;

pub use manifest::{FORMAT, Manifest, ModuleEntry, SignatureEntry, Signatures, check_module_name};
pub use sign::{SignOptions, Signed, sign};
pub use verify::{SetInfo, Trust, VerifiedModule, VerifiedSet, verify};

use std::path::PathBuf;

/// The manifest's file name, beside the modules.
pub const MANIFEST_FILE: &str = "policy-set.json";
/// The signatures' file name, beside the modules.
pub const SIGNATURES_FILE: &str = "policy-set.sig";
/// Prefixed to the manifest bytes before signing: a signature over a policy
/// set can never be replayed as a signature over anything else this key
/// signs (audit checkpoints), nor the other way round.
pub const SIGNING_CONTEXT: &[u8] = b"jitgate policy-set v1\n";
/// Largest manifest read, bytes (4,096 modules fit several times over).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest signatures file read, bytes.
pub const MAX_SIGNATURES_BYTES: u64 = 64 << 10;
/// Most modules one set may list.
pub const MAX_MODULES: usize = 1024;
/// Most signature entries one set may carry.
pub const MAX_SIGNATURES: usize = 64;

/// Why a policy set was refused (or could not be signed). Each names the
/// file or the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicySetError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No manifest or no signatures: the set is unsigned.
    #[error("{}: missing; the policy set is unsigned (sign it with `jitgate sign`)", path.display())]
    Unsigned {
        /// The missing file.
        path: PathBuf,
    },
    /// The manifest or signatures file is malformed.
    #[error("{}: {field}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The field (or `bytes` for the file as a whole).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No signature by a trusted key.
    #[error("{}: no signature by a trusted key (signed by: {})", path.display(), if signed_by.is_empty() { "nobody".to_string() } else { signed_by.join(", ") })]
    UntrustedSigner {
        /// The signatures file.
        path: PathBuf,
        /// Key ids of the signatures present.
        signed_by: Vec<String>,
    },
    /// A trusted key's signature does not verify.
    #[error("{}: the signature by trusted key {key_id} does not verify over {MANIFEST_FILE}", path.display())]
    BadSignature {
        /// The signatures file.
        path: PathBuf,
        /// The key.
        key_id: String,
    },
    /// Fewer distinct trusted signatures than `min-signatures`.
    #[error("{}: {valid} valid signature(s) by distinct trusted keys, {required} required (trust.min-signatures)", path.display())]
    NotEnoughSignatures {
        /// The signatures file.
        path: PathBuf,
        /// Distinct trusted keys that signed.
        valid: usize,
        /// `min-signatures`.
        required: usize,
    },
    /// The manifest's `signer` did not sign it.
    #[error("{}: signer: key {signer} named as the issuer has no valid trusted signature", path.display())]
    IssuerDidNotSign {
        /// The manifest.
        path: PathBuf,
        /// The key id the manifest names.
        signer: String,
    },
    /// The sequence is lower than the last accepted one: a rollback.
    #[error("{}: sequence: {sequence} is lower than the last accepted sequence {last}; refusing a rollback to an older policy set", path.display())]
    Rollback {
        /// The manifest.
        path: PathBuf,
        /// This set's sequence.
        sequence: u64,
        /// The last accepted.
        last: u64,
    },
    /// A `.wasm` file in the folder the manifest does not list.
    #[error("{}: not listed in {MANIFEST_FILE}; an unsigned module is never loaded", path.display())]
    UnlistedModule {
        /// The module.
        path: PathBuf,
    },
    /// A listed module is missing.
    #[error("{}: listed in {MANIFEST_FILE} but missing", path.display())]
    MissingModule {
        /// The module.
        path: PathBuf,
    },
    /// A listed module's size differs.
    #[error("{}: size: {actual} bytes, the manifest says {expected}", path.display())]
    SizeMismatch {
        /// The module.
        path: PathBuf,
        /// From the manifest.
        expected: u64,
        /// On disk (at most one byte past `expected` is read).
        actual: u64,
    },
    /// A listed module's digest differs.
    #[error("{}: sha256: {actual}, the manifest says {expected}", path.display())]
    DigestMismatch {
        /// The module.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the bytes read.
        actual: String,
    },
    /// A trust anchor is unusable.
    #[error("trust: {0}")]
    Trust(String),
    /// A key file could not be read.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}
