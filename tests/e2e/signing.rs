//! Signed policy sets end to end: `jitgate keygen/sign/verify` as a user
//! runs them, and `serve`, reload, `eval` and `test` refusing every attack
//! on a set once `[trust]` is configured. One test per attack, named after
//! it (the byte-level variants are unit tests in host/src/policy_set/).

use ed25519_dalek::Signer;
use jitgate::policy_set::{
    self, MANIFEST_FILE, Manifest, ModuleEntry, SIGNATURES_FILE, SIGNING_CONTEXT, SignOptions,
    SignatureEntry, Signatures, Trust,
};
use jitgate_tests::app::App;
use jitgate_tests::server::{Backend, Guard, TestStore, body, write_config_with};
use jitgate_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn jitgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .arg("--no-cache")
        .current_dir(root())
        .output()
        .expect("run jitgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or(".")
}

/// A key pair in `dir`, named `name`.
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (sec, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    jitgate::keys::keygen(&sec, &public).expect("keygen");
    (sec, public)
}

fn sign(set: &Path, key: &Path, sequence: u64) -> Manifest {
    let k = jitgate::keys::read_secret(key).expect("key");
    let opts = SignOptions {
        version: None,
        sequence: Some(sequence),
        now: 1_795_600_800,
    };
    policy_set::sign(set, &k, &opts).expect("sign").manifest
}

/// The six example policies copied into `dir/name`.
fn example_set(dir: &Path, name: &str) -> PathBuf {
    let set = dir.join(name);
    std::fs::create_dir_all(&set).expect("mkdir");
    for e in std::fs::read_dir(policy_dir()).expect("policies") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "wasm") {
            std::fs::copy(&p, set.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    set
}

/// A server config over a fresh store of `b` with `[trust]` naming a new
/// key; its policy folder (the clock-free examples) signed at sequence 1.
struct Setup {
    guard: Guard,
    cfg: PathBuf,
    policies: PathBuf,
    key: PathBuf,
}

fn setup(b: Backend) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let (key, public) = keypair(dir.path(), "signer");
    let trust = format!("[trust]\npublic-keys = [\"{}\"]\n", public.display());
    let cfg = write_config_with(dir.path(), &store.url, &trust);
    let policies = dir.path().join("policies");
    sign(&policies, &key, 1);
    Setup {
        guard: (dir, store),
        cfg,
        policies,
        key,
    }
}

fn try_server(cfg: &Path) -> Result<jitgate::api::Server, String> {
    let config = jitgate::config::Config::load(cfg).map_err(|e| e.to_string())?;
    jitgate::api::Server::from_config_with_env(
        config,
        Some(cfg.into()),
        &jitgate_tests::tickets::env,
    )
    .map_err(|e| e.to_string())
}

/// The server refuses to start on the set as it is now, saying `why`.
fn refused(setup: &Setup, why: &str) {
    match try_server(&setup.cfg) {
        Ok(_) => panic!("the server started on a set that should be refused ({why})"),
        Err(e) => assert!(e.contains(why), "expected `{why}` in: {e}"),
    }
}

#[test]
fn keygen_sign_verify_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = example_set(dir.path(), "set");
    let (sec, public) = (dir.path().join("k.pem"), dir.path().join("k.pub"));
    let (code, out, err) = jitgate(&["keygen", "--secret", s(&sec), "--public", s(&public)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = jitgate(&[
        "sign",
        s(&set),
        "--key",
        s(&sec),
        "--version",
        "2026.12",
        "--sequence",
        "7",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("version 2026.12, sequence 7, 6 modules"),
        "{out}"
    );
    let (code, out, err) = jitgate(&["verify", s(&set), "--pubkey", s(&public)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("valid:"), "{out}");
    // Invalid: exit 1, whatever the reason.
    let (other, other_pub) = keypair(dir.path(), "other");
    let (code, _, err) = jitgate(&["verify", s(&set), "--pubkey", s(&other_pub)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no signature by a trusted key"), "{err}");
    let (code, _, err) = jitgate(&[
        "verify",
        s(&set),
        "--pubkey",
        s(&dir.path().join("nope.pub")),
    ]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = jitgate(&[
        "verify",
        s(&set),
        "--pubkey",
        s(&public),
        "--min-sequence",
        "8",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rollback"), "{err}");
    // A second key co-signs; two of two then verify.
    let (code, out, err) = jitgate(&["sign", s(&set), "--key", s(&other)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("co-signed") && out.contains("(2 signature(s))"),
        "{out}"
    );
    let (code, _, err) = jitgate(&[
        "verify",
        s(&set),
        "--pubkey",
        s(&public),
        "--pubkey",
        s(&other_pub),
        "--min-signatures",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(set.join("extra.wasm"), b"\0asm").expect("write");
    let (code, _, err) = jitgate(&["verify", s(&set), "--pubkey", s(&public)]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn signature_stripped_is_refused_by_serve_eval_and_test() {
    let st = setup(Backend::Sqlite);
    std::fs::remove_file(st.policies.join(SIGNATURES_FILE)).expect("rm");
    refused(&st, "unsigned");
    let (code, out, err) = jitgate(&[
        "eval",
        "--config",
        s(&st.cfg),
        "--policies",
        s(&st.policies),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("unsigned"), "{err}");
    let (code, out, err) = jitgate(&[
        "test",
        "policies/",
        "--policy-dir",
        s(&st.policies),
        "--config",
        s(&st.cfg),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("unsigned") && out.contains("0 passed"),
        "{out}"
    );
    // Without [trust] the same folder is loaded as before.
    let (code, out, err) = jitgate(&[
        "eval",
        "--policies",
        s(&st.policies),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn signed_set_passes_eval_and_test_under_trust() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = example_set(dir.path(), "set");
    let (key, public) = keypair(dir.path(), "k");
    let m = sign(&set, &key, 1);
    let cfg = dir.path().join("jitgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "store = \"{}\"\n[trust]\npublic-keys = [\"{}\"]\n",
            s(&dir.path().join("j.db")),
            s(&public)
        ),
    )
    .expect("write");
    let (code, out, err) = jitgate(&[
        "eval",
        "--config",
        s(&cfg),
        "--policies",
        s(&set),
        "--request",
        "examples/request.json",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let d: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(d["policy-set"], m.digest());
    let (code, out, err) = jitgate(&[
        "test",
        "policies/",
        "--policy-dir",
        s(&set),
        "--config",
        s(&cfg),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // inspect shows the set, its sequence and signer, verified.
    let (code, out, err) = jitgate(&["inspect", s(&set), "--config", s(&cfg)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sequence:  1") && out.contains(&format!("signer:    {}", m.signer)),
        "{out}"
    );
    assert!(out.contains("verified:  yes"), "{out}");
    // eval with [trust] refuses a single module: it is no signed set.
    let (code, _, err) = jitgate(&[
        "eval",
        "--config",
        s(&cfg),
        "--policies",
        s(&set.join("baseline.wasm")),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn trust_block_without_key_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config_with(
        dir.path(),
        s(&dir.path().join("j.db")),
        "[trust]\nmin-signatures = 1\n",
    );
    let e = try_server(&cfg).err().expect("refused");
    assert!(e.contains("trust.public-keys"), "{e}");
    // The binary says so too, for every command that reads the config.
    let (code, _, err) = jitgate(&[
        "eval",
        "--config",
        s(&cfg),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("trust.public-keys"), "{err}");
    let (code, _, err) = jitgate(&["serve", "--config", s(&cfg), "--listen", "127.0.0.1:0"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("trust.public-keys"), "{err}");
}

#[test]
fn extra_unlisted_module_is_refused() {
    let st = setup(Backend::Sqlite);
    std::fs::copy(
        policy("business-hours"),
        st.policies.join("business-hours.wasm"),
    )
    .expect("copy");
    refused(&st, "not listed");
}

#[test]
fn one_flipped_byte_is_refused() {
    let st = setup(Backend::Sqlite);
    let p = st.policies.join("file-recovery.wasm");
    let mut b = std::fs::read(&p).expect("read");
    let at = b.len() / 2;
    b[at] ^= 0x01;
    std::fs::write(&p, &b).expect("write");
    refused(&st, "sha256");
}

#[test]
fn bytes_appended_are_refused() {
    let st = setup(Backend::Sqlite);
    let p = st.policies.join("baseline.wasm");
    let mut b = std::fs::read(&p).expect("read");
    b.extend_from_slice(b"\0\0\0\0");
    std::fs::write(&p, &b).expect("write");
    refused(&st, "size");
}

#[test]
fn untrusted_key_is_refused() {
    let st = setup(Backend::Sqlite);
    let (other, _) = keypair(st.guard.0.path(), "mallory");
    sign(&st.policies, &other, 2);
    refused(&st, "no signature by a trusted key");
}

fn older_sequence_is_refused(b: Backend) {
    let st = setup(b);
    sign(&st.policies, &st.key, 5);
    drop(try_server(&st.cfg).expect("sequence 5 starts"));
    // After a restart, an older set is a rollback: the floor is in the store.
    sign(&st.policies, &st.key, 3);
    refused(&st, "lower than the last accepted sequence 5");
    // `eval` with the same config reads the floor from the store too.
    let (code, out, err) = jitgate(&[
        "eval",
        "--config",
        s(&st.cfg),
        "--policies",
        s(&st.policies),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("rollback"), "{err}");
    sign(&st.policies, &st.key, 6);
    let app = App::from_file(&st.cfg, st.guard);
    let set = app.get("/v1/policies", Some("t-audit")).json()["set"].clone();
    assert_eq!(
        (set["signed"].clone(), set["sequence"].clone()),
        (true.into(), 6.into())
    );
    // A reload of an older set is refused and the running set stays.
    sign(&st.policies, &st.key, 4);
    let r = app.post(
        "/v1/policies/reload",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("lower than the last accepted sequence 6"),
        "{}",
        r.body
    );
    let set = app.get("/v1/policies", Some("t-audit")).json()["set"].clone();
    assert_eq!(set["sequence"], 6);
    // The refusal is audited.
    let audit = app.get("/v1/audit?limit=1000", Some("t-audit")).json();
    assert!(
        audit["records"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["kind"] == "policy-set"
                && r["data"]["refused"]
                    .as_str()
                    .is_some_and(|m| m.contains("rollback")))),
        "{audit}"
    );
}

#[test]
fn signature_of_set_a_with_the_modules_of_set_b_is_refused() {
    let st = setup(Backend::Sqlite);
    // Set A: the examples as signed. Set B: file-recovery replaced by
    // business-hours under its name (a module the signer never listed there).
    let a = tempfile::tempdir().expect("tempdir");
    for f in [MANIFEST_FILE, SIGNATURES_FILE] {
        std::fs::copy(st.policies.join(f), a.path().join(f)).expect("copy");
    }
    std::fs::copy(
        policy("business-hours"),
        st.policies.join("file-recovery.wasm"),
    )
    .expect("swap");
    refused(&st, "file-recovery.wasm");
    // B signed properly, then A's signature put beside B's manifest.
    sign(&st.policies, &st.key, 2);
    std::fs::copy(
        a.path().join(SIGNATURES_FILE),
        st.policies.join(SIGNATURES_FILE),
    )
    .expect("copy");
    refused(&st, "does not verify");
}

/// A manifest made by hand and signed with the trusted key: what a
/// compromised build step (not the key holder) cannot do, so each name
/// check must hold on its own.
fn sign_by_hand(set: &Path, key: &Path, modules: Vec<ModuleEntry>) {
    let k = jitgate::keys::read_secret(key).expect("key");
    let m = Manifest {
        format: policy_set::FORMAT.into(),
        issued_at: 1,
        modules,
        sequence: 9,
        signer: jitgate::keys::key_id(&k.verifying_key()),
        version: "9".into(),
    };
    let bytes = m.to_bytes();
    std::fs::write(set.join(MANIFEST_FILE), &bytes).expect("write");
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(&bytes);
    let sigs = Signatures {
        signatures: vec![SignatureEntry {
            key_id: m.signer.clone(),
            signature: hex::encode(k.sign(&msg).to_bytes()),
        }],
    };
    std::fs::write(set.join(SIGNATURES_FILE), sigs.to_bytes()).expect("write");
}

#[test]
fn path_traversal_or_duplicate_names_in_the_manifest_are_refused() {
    let st = setup(Backend::Sqlite);
    let outside = st.guard.0.path().join("outside.wasm");
    std::fs::copy(policy("business-hours"), &outside).expect("copy");
    let bytes = std::fs::read(&outside).expect("read");
    let entry = |name: &str| ModuleEntry {
        name: name.into(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        size: bytes.len() as u64,
    };
    for names in [
        vec!["../outside.wasm".to_string()],
        vec![outside.display().to_string()],
        vec!["baseline.wasm".into(), "baseline.wasm".into()],
    ] {
        sign_by_hand(
            &st.policies,
            &st.key,
            names.iter().map(|n| entry(n)).collect(),
        );
        refused(&st, "modules[");
    }
}

#[test]
fn non_canonical_signature_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = example_set(dir.path(), "set");
    let (key, public) = keypair(dir.path(), "k");
    sign(&set, &key, 1);
    let p = set.join(SIGNATURES_FILE);
    let mut sigs = Signatures::parse(&p, &std::fs::read(&p).expect("read")).expect("parse");
    let mut raw = hex::decode(&sigs.signatures[0].signature).expect("hex");
    // s += L (the group order): a lax verifier accepts it as the same
    // signature; verify_strict does not.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let sum = u16::from(raw[32 + i]) + u16::from(*l) + carry;
        raw[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    sigs.signatures[0].signature = hex::encode(&raw);
    std::fs::write(&p, sigs.to_bytes()).expect("write");
    let (code, _, err) = jitgate(&["verify", s(&set), "--pubkey", s(&public)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");
}

fn verified(set: &Path, public: &Path) -> policy_set::VerifiedSet {
    let trust = Trust::from_files(&[public.to_path_buf()], 1).expect("trust");
    policy_set::verify(set, &trust, None, 4 << 20).expect("verifies")
}

fn cached_engine(cache: &Path) -> jitgate::Engine {
    jitgate::Engine::new(jitgate::EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..jitgate::EngineConfig::default()
    })
    .expect("engine")
}

/// The cached artifact of the module with `digest`.
fn artifact(cache: &Path, digest: &str) -> PathBuf {
    std::fs::read_dir(cache)
        .expect("cache")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{digest}-")))
        })
        .unwrap_or_else(|| panic!("no artifact for {digest}"))
}

#[test]
fn tampered_compile_cache_cannot_bypass_signing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("set");
    std::fs::create_dir(&set).expect("mkdir");
    std::fs::copy(policy("file-recovery"), set.join("file-recovery.wasm")).expect("copy");
    let (key, public) = keypair(dir.path(), "k");
    sign(&set, &key, 1);
    let cache = dir.path().join("cache");
    let v = verified(&set, &public);
    let mut e = cached_engine(&cache);
    e.load_set(&v).expect("load");
    let signed_digest = e.policies().next().expect("one").digest.clone();
    // An attacker with write access to the cache (not its key) compiles
    // another module through it and puts that artifact where the signed
    // module's would be found.
    let mut other = cached_engine(&cache);
    other.load_file(&policy("baseline")).expect("load baseline");
    let baseline_digest = other.policies().next().expect("one").digest.clone();
    std::fs::copy(
        artifact(&cache, &baseline_digest),
        artifact(&cache, &signed_digest),
    )
    .expect("plant");
    let mut e = cached_engine(&cache);
    e.load_set(&v).expect("load");
    assert_eq!(e.load_stats().rejected, 1, "the planted artifact was used");
    let meta = e.policies().next().expect("one");
    assert_eq!(
        (meta.name.as_str(), meta.digest.as_str()),
        ("file-recovery", signed_digest.as_str())
    );
    // And a flipped byte in the (recompiled) artifact is refused the same way.
    let p = artifact(&cache, &signed_digest);
    let mut b = std::fs::read(&p).expect("read");
    let at = b.len() - 1;
    b[at] ^= 1;
    std::fs::write(&p, &b).expect("write");
    let mut e = cached_engine(&cache);
    e.load_set(&v).expect("load");
    assert_eq!(e.load_stats().rejected, 1);
    assert_eq!(e.policies().next().expect("one").name, "file-recovery");
}

#[test]
fn module_swapped_between_verification_and_compilation_is_never_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = example_set(dir.path(), "set");
    let (key, public) = keypair(dir.path(), "k");
    let m = sign(&set, &key, 1);
    let v = verified(&set, &public);
    // The file changes after verification, before the engine compiles.
    std::fs::copy(policy("baseline"), set.join("file-recovery.wasm")).expect("swap");
    let mut e = jitgate::Engine::new(jitgate::EngineConfig::default()).expect("engine");
    e.load_set(&v).expect("load");
    // What was compiled is what was verified: every module's digest is the
    // manifest's, and file-recovery is file-recovery.
    for (meta, entry) in e.policies().zip(&m.modules) {
        assert_eq!(
            meta.digest,
            format!("sha256:{}", entry.sha256),
            "{}",
            entry.name
        );
    }
    assert!(e.policies().any(|p| p.name == "file-recovery"));
    assert_eq!(e.policy_set().digest, m.digest());
    let req = jitgate::request::from_json(
        &std::fs::read_to_string(root().join("examples/request.json")).expect("request"),
    )
    .expect("parse");
    let d = e.decide(&req).expect("decide");
    assert!(
        d.policies.iter().any(|p| p.name == "file-recovery"),
        "{d:?}"
    );
    assert_eq!(d.policy_set, m.digest());
}

fn decisions_name_the_set_digest_and_policies_show_the_set(b: Backend) {
    let st = setup(b);
    let m = Manifest::parse(
        &st.policies.join(MANIFEST_FILE),
        &std::fs::read(st.policies.join(MANIFEST_FILE)).expect("read"),
    )
    .expect("manifest");
    let app = App::from_file(&st.cfg, st.guard);
    let v = app.get("/v1/policies", Some("t-alice")).json();
    assert_eq!(v["set"]["digest"], m.digest());
    assert_eq!(v["set"]["signed"], true);
    assert_eq!(v["set"]["sequence"], 1);
    assert_eq!(v["set"]["signer"], m.signer);
    assert_eq!(v["set"]["signers"][0], m.signer);
    let r = app.post(
        "/v1/decisions",
        Some("t-pipe"),
        &body("d1", "alice", "file-recovery", 600),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.post(
        "/v1/requests",
        Some("t-pipe"),
        &body("r1", "alice", "file-recovery", 600),
    );
    assert!(r.status < 300, "{}", r.body);
    let audit = app.get("/v1/audit?limit=1000", Some("t-audit")).json();
    let records = audit["records"].as_array().cloned().unwrap_or_default();
    for kind in ["decision", "request"] {
        let r = records
            .iter()
            .find(|r| r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} record"));
        assert_eq!(
            r["data"]["decision"]["policy-set"],
            m.digest(),
            "{kind}: {r}"
        );
    }
    // Start-up recorded the set it accepted.
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "policy-set" && r["data"]["digest"] == m.digest()),
        "{audit}"
    );
}

#[test]
fn reload_refuses_an_unsigned_candidate_and_keeps_the_running_set() {
    let st = setup(Backend::Sqlite);
    let policies = st.policies.clone();
    let key = st.key.clone();
    let app = App::from_file(&st.cfg, st.guard);
    let before = app.get("/v1/policies", Some("t-audit")).json();
    std::fs::copy(
        policy("business-hours"),
        policies.join("business-hours.wasm"),
    )
    .expect("drop in");
    let r = app.post(
        "/v1/policies/reload",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not listed"), "{}", r.body);
    let after = app.get("/v1/policies", Some("t-audit")).json();
    assert_eq!(
        (&after["set"], &after["policies"]),
        (&before["set"], &before["policies"])
    );
    assert!(
        after["last-rejection"]["refused"]
            .as_str()
            .is_some_and(|m| m.contains("not listed"))
    );
    // Signed, the same folder reloads as the next sequence.
    sign(&policies, &key, 2);
    let r = app.post(
        "/v1/policies/reload",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["set"]["sequence"], 2);
    assert_eq!(r.json()["policies"].as_array().map(Vec::len), Some(6));
}

both_stores!(
    older_sequence_is_refused,
    decisions_name_the_set_digest_and_policies_show_the_set,
);

// Hot reload with rollback (issue 15 item 2).

const PASSING_FIXTURE: &str = "policies: [file-recovery]\n\
defaults:\n  subject: {id: alice, kind: human, roles: [helpdesk]}\n  task: file-recovery\n  resource: fs\n  entitlement: op\n  justification: restore it now\n  requested-ttl: 600\n  now: 2026-11-25T10:00:00Z\n\
cases:\n  - name: no ticket denies\n    expect: {outcome: deny}\n";

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn metric(text: &str, line: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn watched_folder_keeps_the_old_set_on_a_broken_or_unsigned_candidate() {
    use jitgate_tests::http::get;
    let st = setup(Backend::Sqlite);
    let server = jitgate_tests::server::Server::start(&st.cfg);
    let set = |k: &str| get(server.addr, "/v1/policies", Some("t-audit")).json()[k].clone();
    assert_eq!(set("set")["sequence"], 1);
    // An unsigned module dropped in: refused, counted, shown; seq 1 serves.
    std::fs::copy(
        policy("business-hours"),
        st.policies.join("business-hours.wasm"),
    )
    .expect("drop");
    wait_until("the candidate's rejection", || {
        !set("last-rejection").is_null()
    });
    assert!(
        set("last-rejection")["refused"]
            .as_str()
            .is_some_and(|r| r.contains("not listed")),
        "{}",
        set("last-rejection")
    );
    assert_eq!(set("set")["sequence"], 1);
    let r = jitgate_tests::http::post(
        server.addr,
        "/v1/decisions",
        Some("t-pipe"),
        &body("w1", "alice", "file-recovery", 600),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let m = get(server.addr, "/metrics", None).body;
    assert_eq!(
        metric(&m, "jitgate_policy_reloads_total{result=\"rejected\"}"),
        1,
        "{m}"
    );
    // Signed properly (business-hours included), it is swapped in.
    sign(&st.policies, &st.key, 2);
    wait_until("the signed set", || set("set")["sequence"] == 2);
    assert_eq!(set("policies").as_array().map(Vec::len), Some(6));
    let m = get(server.addr, "/metrics", None).body;
    assert_eq!(
        metric(&m, "jitgate_policy_reloads_total{result=\"accepted\"}"),
        1,
        "{m}"
    );
    // SIGHUP reloads too: a re-signed identical set (sequence 3).
    sign(&st.policies, &st.key, 3);
    let _ = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status();
    wait_until("the SIGHUP reload", || set("set")["sequence"] == 3);
    drop(st);
}

#[test]
fn candidate_failing_its_own_fixtures_is_refused_and_rollback_returns_to_the_previous_set() {
    let st = setup(Backend::Sqlite);
    let (policies, key) = (st.policies.clone(), st.key.clone());
    let app = App::from_file(&st.cfg, st.guard);
    let status = || app.get("/v1/policies", Some("t-audit")).json();
    // Fixtures beside the modules that pass: the candidate is taken.
    std::fs::create_dir(policies.join("fixtures")).expect("mkdir");
    std::fs::write(
        policies.join("fixtures/file-recovery.yaml"),
        PASSING_FIXTURE,
    )
    .expect("write");
    sign(&policies, &key, 2);
    let r = app.post(
        "/v1/policies/reload",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status()["set"]["sequence"], 2);
    // A candidate whose own fixtures fail (the signer shipped a bad set):
    // refused, the running set stays.
    std::fs::write(
        policies.join("fixtures/file-recovery.yaml"),
        PASSING_FIXTURE.replace("{outcome: deny}", "{outcome: allow}"),
    )
    .expect("write");
    sign(&policies, &key, 3);
    let r = app.post(
        "/v1/policies/reload",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("fixtures failed") && r.body.contains("expected allow, got deny"),
        "{}",
        r.body
    );
    assert_eq!(status()["set"]["sequence"], 2);
    assert!(
        status()["last-rejection"]["refused"]
            .as_str()
            .is_some_and(|m| m.contains("fixtures failed"))
    );
    // Rollback (admin only) returns to sequence 1, once; then nothing is left.
    let r = app.post(
        "/v1/policies/rollback",
        Some("t-audit"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // A decision in flight keeps the engine it took.
    let in_flight = app.service().engine();
    let r = app.post(
        "/v1/policies/rollback",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["set"]["sequence"], 1);
    assert_eq!(status()["set"]["sequence"], 1);
    assert_eq!(in_flight.policy_set().sequence, Some(2));
    let req = jitgate::request::from_json(
        &std::fs::read_to_string(root().join("examples/request.json")).expect("request"),
    )
    .expect("parse");
    let d = in_flight.decide(&req).expect("decides on its own set");
    assert_eq!(
        Some(d.policy_set),
        in_flight.policy_set().digest.clone().into()
    );
    let r = app.post(
        "/v1/policies/rollback",
        Some("t-admin"),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let audit = app.get("/v1/audit?limit=1000", Some("t-audit")).json();
    assert!(
        audit["records"].as_array().is_some_and(|rs| rs
            .iter()
            .any(|r| r["kind"] == "policy-set" && r["data"]["rollback"]["sequence"] == 1)),
        "{audit}"
    );
    let m = app.get("/metrics", None).body;
    assert_eq!(metric(&m, "jitgate_policy_rollbacks_total"), 1, "{m}");
}
