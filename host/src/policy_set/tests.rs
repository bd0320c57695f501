//! One test per attack on a signed set. Module bytes here need not be
//! WebAssembly: verification is about bytes; what the engine then does
//! with them is tested end to end (tests/e2e/signing.rs).

use super::*;
use ed25519_dalek::SigningKey;
use std::path::Path;

const MAX: usize = 4 << 20;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trust(keys: &[&SigningKey], min: usize) -> Trust {
    Trust::new(keys.iter().map(|k| k.verifying_key()).collect(), min).expect("trust")
}

fn opts(sequence: u64) -> SignOptions {
    SignOptions {
        version: None,
        sequence: Some(sequence),
        now: 1_795_600_800,
    }
}

/// A folder with two modules, signed by `k` at `sequence`.
fn signed_set(k: &SigningKey, sequence: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("alpha.wasm"), b"\0asm alpha module").expect("write");
    std::fs::write(dir.path().join("beta.wasm"), b"\0asm beta module").expect("write");
    sign(dir.path(), k, &opts(sequence)).expect("sign");
    dir
}

fn check(dir: &Path, t: &Trust) -> Result<VerifiedSet, PolicySetError> {
    verify(dir, t, None, MAX)
}

#[test]
fn a_signed_set_verifies_and_returns_the_bytes_it_hashed() {
    let k = key(1);
    let dir = signed_set(&k, 3);
    let set = check(dir.path(), &trust(&[&k], 1)).expect("verifies");
    assert_eq!(set.manifest.sequence, 3);
    assert_eq!(set.manifest.version, "3");
    assert_eq!(set.signers, vec![crate::keys::key_id(&k.verifying_key())]);
    let names: Vec<_> = set.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alpha.wasm", "beta.wasm"]);
    assert_eq!(&*set.modules[0].bytes, b"\0asm alpha module");
    let info = set.info();
    assert!(info.signed);
    assert_eq!(info.digest, set.manifest.digest());
    assert_eq!(info.sequence, Some(3));
}

#[test]
fn signature_stripped_is_refused_as_unsigned() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    std::fs::remove_file(dir.path().join(SIGNATURES_FILE)).expect("rm");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("unsigned");
    assert!(matches!(e, PolicySetError::Unsigned { .. }), "{e}");
    // An emptied signatures file is no better.
    let dir = signed_set(&k, 1);
    std::fs::write(dir.path().join(SIGNATURES_FILE), b"{\"signatures\":[]}").expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("no signature");
    assert!(matches!(e, PolicySetError::UntrustedSigner { .. }), "{e}");
    // And a folder with no manifest at all.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("alpha.wasm"), b"x").expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("unsigned");
    assert!(matches!(e, PolicySetError::Unsigned { .. }), "{e}");
}

#[test]
fn trust_block_without_key_is_an_error() {
    let e = Trust::new(Vec::new(), 1).expect_err("no key");
    assert!(e.to_string().contains("public-keys"), "{e}");
    let k = key(1);
    let e = Trust::new(vec![k.verifying_key()], 0).expect_err("min 0");
    assert!(e.to_string().contains("min-signatures"), "{e}");
    // The same key twice is one key: a minimum of 2 cannot be met.
    let e = Trust::new(vec![k.verifying_key(), k.verifying_key()], 2).expect_err("one key");
    assert!(e.to_string().contains("min-signatures"), "{e}");
}

#[test]
fn extra_unlisted_module_is_refused() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    std::fs::write(dir.path().join("gamma.wasm"), b"\0asm planted").expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("unlisted");
    assert!(matches!(e, PolicySetError::UnlistedModule { .. }), "{e}");
    // Any case of the extension counts: `X.WASM` is a module on some file
    // systems.
    let dir = signed_set(&k, 1);
    std::fs::write(dir.path().join("GAMMA.WASM"), b"\0asm planted").expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("unlisted");
    assert!(e.to_string().contains("GAMMA.WASM"), "{e}");
}

#[test]
fn one_flipped_byte_is_refused() {
    let k = key(1);
    // In a module: its digest no longer matches.
    let dir = signed_set(&k, 1);
    let p = dir.path().join("beta.wasm");
    let mut b = std::fs::read(&p).expect("read");
    b[5] ^= 1;
    std::fs::write(&p, &b).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("flipped");
    assert!(matches!(e, PolicySetError::DigestMismatch { .. }), "{e}");
    // In the manifest's sequence: still canonical JSON, but the signature
    // no longer verifies.
    let dir = signed_set(&k, 1);
    let p = dir.path().join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(&p, text.replace("\"sequence\":1", "\"sequence\":9")).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("flipped");
    assert!(matches!(e, PolicySetError::BadSignature { .. }), "{e}");
    // In the signature itself.
    let dir = signed_set(&k, 1);
    let p = dir.path().join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    let s = &mut sigs.signatures[0].signature;
    let flipped = if s.starts_with('0') { "1" } else { "0" };
    s.replace_range(0..1, flipped);
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("flipped");
    assert!(matches!(e, PolicySetError::BadSignature { .. }), "{e}");
}

#[test]
fn bytes_appended_are_refused() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    let p = dir.path().join("alpha.wasm");
    let mut b = std::fs::read(&p).expect("read");
    b.extend_from_slice(b"tail");
    std::fs::write(&p, &b).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("appended");
    assert!(
        matches!(e, PolicySetError::SizeMismatch { actual, expected, .. } if actual == expected + 1),
        "{e}"
    );
    // Appended to the manifest (a newline): not canonical.
    let dir = signed_set(&k, 1);
    let p = dir.path().join(MANIFEST_FILE);
    let mut b = std::fs::read(&p).expect("read");
    b.push(b'\n');
    std::fs::write(&p, &b).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("appended");
    assert!(e.to_string().contains("canonical"), "{e}");
}

#[test]
fn untrusted_key_is_refused() {
    let (signer, trusted) = (key(1), key(2));
    let dir = signed_set(&signer, 1);
    let e = check(dir.path(), &trust(&[&trusted], 1)).expect_err("untrusted");
    assert!(
        matches!(&e, PolicySetError::UntrustedSigner { signed_by, .. }
            if signed_by == &[crate::keys::key_id(&signer.verifying_key())]),
        "{e}"
    );
    // An untrusted signer naming itself with a trusted key's id is a bad
    // signature, not a pass.
    let dir = signed_set(&signer, 1);
    let p = dir.path().join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    sigs.signatures[0].key_id = crate::keys::key_id(&trusted.verifying_key());
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    let e = check(dir.path(), &trust(&[&trusted], 1)).expect_err("forged id");
    assert!(matches!(e, PolicySetError::BadSignature { .. }), "{e}");
}

#[test]
fn older_sequence_is_refused() {
    let k = key(1);
    let dir = signed_set(&k, 4);
    let t = trust(&[&k], 1);
    verify(dir.path(), &t, Some(4), MAX).expect("the same sequence again is fine");
    verify(dir.path(), &t, Some(3), MAX).expect("newer is fine");
    let e = verify(dir.path(), &t, Some(5), MAX).expect_err("rollback");
    assert!(
        matches!(
            e,
            PolicySetError::Rollback {
                sequence: 4,
                last: 5,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn signature_of_set_a_with_the_modules_of_set_b_is_refused() {
    let k = key(1);
    let a = signed_set(&k, 1);
    let b = tempfile::tempdir().expect("tempdir");
    std::fs::write(b.path().join("alpha.wasm"), b"\0asm ALPHA module").expect("write");
    std::fs::write(b.path().join("beta.wasm"), b"\0asm beta module").expect("write");
    sign(b.path(), &k, &opts(2)).expect("sign b");
    let t = trust(&[&k], 1);
    // A's manifest and signature moved over B's modules.
    let ab = tempfile::tempdir().expect("tempdir");
    for f in ["alpha.wasm", "beta.wasm"] {
        std::fs::copy(b.path().join(f), ab.path().join(f)).expect("copy");
    }
    for f in [MANIFEST_FILE, SIGNATURES_FILE] {
        std::fs::copy(a.path().join(f), ab.path().join(f)).expect("copy");
    }
    let e = check(ab.path(), &t).expect_err("A's signature, B's modules");
    assert!(matches!(e, PolicySetError::DigestMismatch { .. }), "{e}");
    // A's signature beside B's manifest.
    std::fs::copy(b.path().join(MANIFEST_FILE), ab.path().join(MANIFEST_FILE)).expect("copy");
    let e = check(ab.path(), &t).expect_err("A's signature, B's manifest");
    assert!(matches!(e, PolicySetError::BadSignature { .. }), "{e}");
}

/// Re-sign a hand-made manifest with `k`, as an attacker holding a
/// trusted key could not, to show the name checks stand on their own.
fn write_signed(dir: &Path, k: &SigningKey, m: &Manifest) {
    use ed25519_dalek::Signer;
    let bytes = m.to_bytes();
    std::fs::write(dir.join(MANIFEST_FILE), &bytes).expect("write");
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(&bytes);
    let sigs = Signatures {
        signatures: vec![SignatureEntry {
            key_id: crate::keys::key_id(&k.verifying_key()),
            signature: hex::encode(k.sign(&msg).to_bytes()),
        }],
    };
    std::fs::write(dir.join(SIGNATURES_FILE), sigs.to_bytes()).expect("write");
}

#[test]
fn path_traversal_absolute_paths_and_duplicate_names_in_the_manifest_are_refused() {
    let k = key(1);
    let t = trust(&[&k], 1);
    let outer = tempfile::tempdir().expect("tempdir");
    let dir = outer.path().join("set");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(outer.path().join("x.wasm"), b"\0asm outside").expect("write");
    let entry = |name: &str| ModuleEntry {
        name: name.into(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"\0asm outside")),
        size: 12,
    };
    let mut m = Manifest {
        format: FORMAT.into(),
        issued_at: 1,
        modules: vec![],
        sequence: 1,
        signer: crate::keys::key_id(&k.verifying_key()),
        version: "1".into(),
    };
    let abs = outer.path().join("x.wasm").display().to_string();
    for names in [
        vec!["../x.wasm"],
        vec![abs.as_str()],
        vec!["sub/x.wasm"],
        vec!["..\\x.wasm"],
        vec![".x.wasm"],
        vec!["x.wasm", "x.wasm"],
        vec!["X.wasm", "x.wasm"],
    ] {
        m.modules = names.iter().map(|n| entry(n)).collect();
        write_signed(&dir, &k, &m);
        let e = check(&dir, &t).expect_err("refused");
        assert!(
            matches!(&e, PolicySetError::Malformed { field, .. } if field.starts_with("modules[")),
            "{names:?}: {e}"
        );
    }
    // The names checked on their own.
    for bad in [
        "../x.wasm",
        "/etc/x.wasm",
        "a/b.wasm",
        "",
        ".wasm",
        "x.wasm\0",
        "x.wat",
    ] {
        assert!(check_module_name(bad).is_err(), "{bad:?}");
    }
    check_module_name("file-recovery.wasm").expect("plain name");
}

#[test]
fn non_canonical_signature_is_refused() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    let p = dir.path().join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    let mut raw: [u8; 64] = hex::decode(&sigs.signatures[0].signature)
        .expect("hex")
        .try_into()
        .expect("64");
    // s + L, little-endian: the same signature to a lax verifier, a
    // different byte string (signature malleability).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(raw[32 + i]) + u16::from(L[i]) + carry;
        raw[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L fits in 32 bytes");
    sigs.signatures[0].signature = hex::encode(raw);
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("s >= L");
    assert!(matches!(e, PolicySetError::BadSignature { .. }), "{e}");
}

#[test]
fn min_signatures_counts_distinct_trusted_keys_and_cosigning_adds_one() {
    let (a, b, c) = (key(1), key(2), key(3));
    let t = trust(&[&a, &b], 2);
    let dir = signed_set(&a, 1);
    let e = check(dir.path(), &t).expect_err("one of two");
    assert!(
        matches!(
            e,
            PolicySetError::NotEnoughSignatures {
                valid: 1,
                required: 2,
                ..
            }
        ),
        "{e}"
    );
    // The same key's signature twice is still one key.
    let p = dir.path().join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    sigs.signatures.push(sigs.signatures[0].clone());
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    assert!(matches!(
        check(dir.path(), &t),
        Err(PolicySetError::NotEnoughSignatures { valid: 1, .. })
    ));
    // An untrusted co-signer does not count.
    let s = sign(dir.path(), &c, &SignOptions::default()).expect("cosign");
    assert!(s.cosigned);
    assert!(check(dir.path(), &t).is_err());
    // A trusted one does; the manifest (issuer a) is unchanged.
    let before = std::fs::read(dir.path().join(MANIFEST_FILE)).expect("read");
    let s = sign(dir.path(), &b, &SignOptions::default()).expect("cosign");
    assert!(s.cosigned);
    assert_eq!(
        std::fs::read(dir.path().join(MANIFEST_FILE)).expect("read"),
        before
    );
    let set = check(dir.path(), &t).expect("two of two");
    assert_eq!(set.signers.len(), 2);
    assert_eq!(set.manifest.signer, crate::keys::key_id(&a.verifying_key()));
}

#[test]
fn a_changed_module_is_signed_as_a_new_set_with_the_next_sequence() {
    let (a, b) = (key(1), key(2));
    let dir = signed_set(&a, 5);
    sign(dir.path(), &b, &SignOptions::default()).expect("cosign");
    std::fs::write(dir.path().join("beta.wasm"), b"\0asm beta v2").expect("write");
    let s = sign(dir.path(), &a, &SignOptions::default()).expect("re-sign");
    assert!(!s.cosigned);
    assert_eq!(s.manifest.sequence, 6);
    // b's signature was over the old manifest: dropped, not kept dangling.
    assert_eq!(s.signatures, 1);
    check(dir.path(), &trust(&[&a], 1)).expect("verifies");
}

#[test]
fn the_issuer_named_in_the_manifest_must_have_signed() {
    let (a, b) = (key(1), key(2));
    let dir = signed_set(&a, 1);
    // b co-signs, then a's entry is removed: the manifest names a as issuer.
    sign(dir.path(), &b, &SignOptions::default()).expect("cosign");
    let p = dir.path().join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    sigs.signatures
        .retain(|s| s.key_id == crate::keys::key_id(&b.verifying_key()));
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    let e = check(dir.path(), &trust(&[&a, &b], 1)).expect_err("issuer missing");
    assert!(matches!(e, PolicySetError::IssuerDidNotSign { .. }), "{e}");
}

#[cfg(unix)]
#[test]
fn a_fifo_under_a_listed_name_is_refused_not_waited_on() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    let p = dir.path().join("alpha.wasm");
    std::fs::remove_file(&p).expect("rm");
    let made = std::process::Command::new("mkfifo").arg(&p).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo on this machine
    }
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("fifo");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn a_listed_module_that_is_missing_is_refused() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    std::fs::remove_file(dir.path().join("alpha.wasm")).expect("rm");
    let e = check(dir.path(), &trust(&[&k], 1)).expect_err("missing");
    assert!(matches!(e, PolicySetError::MissingModule { .. }), "{e}");
}

#[cfg(feature = "service")]
#[test]
fn the_manifest_bytes_are_the_audit_chains_canonical_form() {
    let k = key(1);
    let dir = signed_set(&k, 1);
    let bytes = std::fs::read(dir.path().join(MANIFEST_FILE)).expect("read");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(crate::audit::canonical::to_vec(&v), bytes);
    // The unsigned digest is the same form over names, digests and sizes.
    let info =
        SetInfo::unsigned([("b.wasm", "sha256:00", 2), ("a.wasm", "sha256:ff", 1)].into_iter());
    let expect = serde_json::json!({"format": FORMAT, "modules": [
        {"name": "a.wasm", "sha256": "ff", "size": 1},
        {"name": "b.wasm", "sha256": "00", "size": 2},
    ]});
    assert_eq!(
        info.digest,
        crate::policy::digest(&crate::audit::canonical::to_vec(&expect))
    );
}
