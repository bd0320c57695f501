//! Reading policy modules from disk and refusing what must not run.
//!
//! A module is accepted only if it is a WebAssembly *component* whose imports
//! are all part of the contract (`jitgate:policy/host` and the type-only
//! `jitgate:policy/types`, version 0.2.x, or 0.1.x for a module built
//! against the previous contract) and which exports `jitgate:policy/policy`
//! of that version. No WASI interface is linked at all, so a module
//! that wants files, sockets, clocks or randomness fails here, at load, with
//! the offending import named — not later at a decision.
//! `info` is then called once, under the same sandbox budget as a decision
//! (fuel, memory, output) except that its wall-clock deadline is at least
//! one second, and its answer checked.
//!
//! One file past 500 lines: every check a module passes before it may run (format, world, imports, size, `info`) is one ordered sequence; split, the order would be hidden.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::bindings::PolicyModulePre;
use super::cache::{CacheOutcome, ComponentCache};
use super::sandbox::{
    MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, MAX_TASK_BYTES, MAX_TASKS, MAX_VERSION_BYTES,
    PolicyFailure, SandboxLimits, StoreState, keep, needs_escape,
};
use super::{LoadedPolicy, PolicyMeta};

/// Why a module was refused.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct LoadError {
    /// The module file (or folder).
    pub path: PathBuf,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

/// What is wrong with a module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// Could not read it.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Larger than `max-module-bytes`; refused before compiling.
    #[error(
        "is {size} bytes, over the module size limit of {limit} bytes (sandbox.max-module-bytes)"
    )]
    TooLarge {
        /// File size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core WebAssembly module, not a component; build policies for wasm32-wasip2 with jitgate-sdk"
    )]
    CoreModule,
    /// wasmtime refused it.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// Imports something outside the contract.
    #[error("imports `{import}`, which a policy may not use (only jitgate:policy/host and jitgate:policy/types are provided){}", others_note(.others))]
    ForbiddenImport {
        /// The first offending import.
        import: String,
        /// Any further offending imports.
        others: Vec<String>,
    },
    /// Not a component of world `policy-module`.
    #[error(
        "does not export `jitgate:policy/policy@0.2.x` (or `@0.1.x`), so it is not a policy-module (it exports: {exports})"
    )]
    WrongWorld {
        /// What it does export.
        exports: String,
    },
    /// `info` failed.
    #[error("info() failed: {0}")]
    Info(PolicyFailure),
    /// `info` answered nonsense.
    #[error("info() is invalid: {0}")]
    BadInfo(String),
    /// Two modules claim the same name. The error's path is the module
    /// taken to be the squatter: the one not named after the policy (or the
    /// later one, if both or neither are).
    #[error("declares policy name `{name}`, which is already used by {}", other.display())]
    DuplicateName {
        /// The name.
        name: String,
        /// The other module.
        other: PathBuf,
    },
    /// A folder with no modules.
    #[error("no .wasm policy modules found")]
    Empty,
    /// Built for `jitgate test --coverage` (the SDK's `coverage` feature):
    /// never served, evaluated or reloaded.
    #[error(
        "is a coverage build (custom section `{COVERAGE_SECTION}`, built by `jitgate test --coverage`): only `jitgate test --coverage` runs it; build the policy without the SDK's `coverage` feature to serve it"
    )]
    CoverageBuild,
}

/// The custom section the SDK's `coverage` feature adds to a module.
pub const COVERAGE_SECTION: &str = "jitgate-coverage";

/// Whether `bytes` (a component) carries the [`COVERAGE_SECTION`] custom
/// section, in itself or any module or component nested in it. Bytes the
/// parser cannot read are not a coverage build (compilation refuses them).
pub fn is_coverage_build(bytes: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(c)) if c.name() == COVERAGE_SECTION => {
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn others_note(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!("; also imports {}", others.join(", "))
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn is_contract_import(name: &str) -> bool {
    [
        "jitgate:policy/host@0.2.",
        "jitgate:policy/types@0.2.",
        "jitgate:policy/host@0.1.",
        "jitgate:policy/types@0.1.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

fn is_contract_export(name: &str) -> bool {
    name.starts_with("jitgate:policy/policy@0.2.") || is_previous_contract_export(name)
}

/// Built against the previous contract, 0.1.x.
fn is_previous_contract_export(name: &str) -> bool {
    name.starts_with("jitgate:policy/policy@0.1.")
}

/// Imports and exports of a component, by name.
pub struct Surface {
    /// Import names.
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
}

/// Header check: distinguishes "not wasm", "core module" and "component".
pub fn check_header(bytes: &[u8]) -> Result<(), LoadErrorKind> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadErrorKind::NotWasm);
    }
    // Bytes 4..8: version 1 layer 0 is a core module; layer 1 a component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadErrorKind::CoreModule);
    }
    Ok(())
}

/// The import and export names of a compiled component.
pub fn surface(engine: &wasmtime::Engine, component: &Component) -> Surface {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports = ty
        .exports(engine)
        .filter(|(_, item)| !matches!(item.ty, ComponentItem::Type(_)))
        .map(|(n, _)| n.to_string())
        .collect();
    Surface { imports, exports }
}

/// Check the component's surface against the contract.
pub fn check_surface(s: &Surface) -> Result<(), LoadErrorKind> {
    let mut bad: Vec<String> = s
        .imports
        .iter()
        .filter(|n| !is_contract_import(n))
        .cloned()
        .collect();
    if !bad.is_empty() {
        let import = bad.remove(0);
        return Err(LoadErrorKind::ForbiddenImport {
            import,
            others: bad,
        });
    }
    if !s.exports.iter().any(|n| is_contract_export(n)) {
        return Err(LoadErrorKind::WrongWorld {
            exports: if s.exports.is_empty() {
                "nothing".into()
            } else {
                s.exports.join(", ")
            },
        });
    }
    Ok(())
}

/// Refuse a control character in an `info` string, naming the field: these
/// strings reach terminals (`inspect`, `eval`) and log lines verbatim.
fn no_controls(field: &str, s: &str) -> Result<(), String> {
    match s.char_indices().find(|(_, c)| needs_escape(*c)) {
        Some((at, c)) => Err(format!(
            "{field} contains control character U+{:04X} at byte {at}: `{}`",
            c as u32,
            keep(s, 128)
        )),
        None => Ok(()),
    }
}

fn check_info(info: &super::bindings::wit::PolicyInfo) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_NAME_BYTES
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !name_ok(&info.name) {
        return Err(format!(
            "name `{}` must be 1-{MAX_NAME_BYTES} characters of [A-Za-z0-9._-]",
            keep(&info.name, MAX_NAME_BYTES)
        ));
    }
    if info.version.is_empty() || info.version.len() > MAX_VERSION_BYTES {
        return Err(format!("version must be 1-{MAX_VERSION_BYTES} bytes"));
    }
    no_controls("version", &info.version)?;
    if info.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(format!(
            "description longer than {MAX_DESCRIPTION_BYTES} bytes"
        ));
    }
    no_controls("description", &info.description)?;
    if info.tasks.is_empty() || info.tasks.len() > MAX_TASKS {
        return Err(format!(
            "declares {} tasks; 1..={MAX_TASKS} allowed",
            info.tasks.len()
        ));
    }
    if let Some(t) = info
        .tasks
        .iter()
        .find(|t| t.is_empty() || t.len() > MAX_TASK_BYTES)
    {
        return Err(format!("task name of {} bytes", t.len()));
    }
    for (i, t) in info.tasks.iter().enumerate() {
        no_controls(&format!("tasks[{i}]"), t)?;
    }
    if info.max_ttl == 0 {
        return Err("max-ttl is 0; a policy that can never grant should not be loaded".into());
    }
    Ok(())
}

/// Refuse a module over the size limit, before anything reads or compiles
/// it: compile time and memory grow with code size (31 MB took 30 s).
pub fn check_size(size: u64, limits: &SandboxLimits) -> Result<(), LoadErrorKind> {
    if size > limits.max_module_bytes as u64 {
        return Err(LoadErrorKind::TooLarge {
            size,
            limit: limits.max_module_bytes,
        });
    }
    Ok(())
}

/// A module's bytes, read only if the file is within the size limit.
pub fn read_module(path: &Path, limits: &SandboxLimits) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let err = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let file = std::fs::File::open(path).map_err(|e| err(LoadErrorKind::Io(e)))?;
    let size = file
        .metadata()
        .map_err(|e| err(LoadErrorKind::Io(e)))?
        .len();
    check_size(size, limits).map_err(err)?;
    let mut bytes = Vec::with_capacity(size as usize);
    // `take`: a file that grows after the size check is still cut at the
    // limit (and then refused as too large below).
    file.take(limits.max_module_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(LoadErrorKind::Io(e)))?;
    check_size(bytes.len() as u64, limits).map_err(err)?;
    Ok(bytes)
}

/// Size check, header check and compilation (or a cache hit).
pub(crate) fn compile(
    engine: &wasmtime::Engine,
    cache: Option<&ComponentCache>,
    limits: &SandboxLimits,
    digest: &str,
    bytes: &[u8],
) -> Result<(Component, CacheOutcome), LoadErrorKind> {
    check_size(bytes.len() as u64, limits)?;
    check_header(bytes)?;
    match cache {
        Some(c) => c.get_or_compile(engine, digest, bytes),
        None => Component::new(engine, bytes).map(|c| (c, CacheOutcome::Disabled)),
    }
    .map_err(|e| LoadErrorKind::Invalid(format!("{e:#}")))
}

/// Compile and check one module. A coverage build is refused unless
/// `coverage` (the engine runs `jitgate test --coverage`).
pub(crate) fn load_bytes(
    engine: &wasmtime::Engine,
    linker: &Linker<StoreState>,
    cache: Option<&ComponentCache>,
    limits: &SandboxLimits,
    (path, bytes): (&Path, &[u8]),
    coverage: bool,
) -> Result<(LoadedPolicy, CacheOutcome), LoadError> {
    let covered = is_coverage_build(bytes);
    if covered && !coverage {
        return Err(LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::CoverageBuild,
        });
    }
    let digest = digest(bytes);
    let (component, outcome) =
        compile(engine, cache, limits, &digest, bytes).map_err(|kind| LoadError {
            path: path.to_path_buf(),
            kind,
        })?;
    let mut policy = load_component(
        engine,
        linker,
        limits,
        path,
        digest,
        bytes.len() as u64,
        &component,
    )?;
    policy.coverage = covered;
    Ok((policy, outcome))
}

/// Check a compiled module's surface and `info`.
pub(crate) fn load_component(
    engine: &wasmtime::Engine,
    linker: &Linker<StoreState>,
    limits: &SandboxLimits,
    path: &Path,
    digest: String,
    size: u64,
    component: &Component,
) -> Result<LoadedPolicy, LoadError> {
    let err = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let surface = surface(engine, component);
    check_surface(&surface).map_err(err)?;
    let previous = surface
        .exports
        .iter()
        .any(|n| is_previous_contract_export(n));
    let pre = linker
        .instantiate_pre(component)
        .and_then(|pre| {
            Ok(if previous {
                super::Pre::V0_1(super::bindings::v0_1::PolicyModulePre::new(pre)?)
            } else {
                super::Pre::Current(PolicyModulePre::new(pre)?)
            })
        })
        .map_err(|e| err(LoadErrorKind::Invalid(format!("{e:#}"))))?;
    let info = super::call_info(&pre, limits).map_err(|f| err(LoadErrorKind::Info(f)))?;
    check_info(&info).map_err(|m| err(LoadErrorKind::BadInfo(m)))?;
    let wildcard = info.tasks.iter().any(|t| t == "*");
    let meta = PolicyMeta {
        name: info.name,
        version: info.version,
        description: info.description,
        tasks: info.tasks,
        max_ttl: info.max_ttl,
        digest,
        path: path.to_path_buf(),
        size,
        warnings: Vec::new(),
    };
    let mut policy = LoadedPolicy::new(meta, pre);
    if wildcard && probe_allows(&policy, limits) {
        policy.meta.warnings.push(format!(
            "declares task `*` and allowed a request for a task no policy names: it may grant \
             any task, for up to {} s, unless another policy denies",
            policy.meta.max_ttl
        ));
    }
    Ok(policy)
}

/// Whether a policy answers allow (or require-approval) to a plausible
/// request for a task nobody names: what makes a `*` policy worth a
/// warning. One evaluation under the usual budget; a failure is no.
fn probe_allows(policy: &LoadedPolicy, limits: &SandboxLimits) -> bool {
    use super::Verdict;
    use super::bindings::wit;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let subject = "probe@jitgate.invalid";
    let req = wit::Request {
        id: "jitgate-load-probe",
        subject: wit::Subject {
            id: subject,
            kind: wit::SubjectKind::Human,
            roles: &[],
            groups: &[],
            mfa_at: Some(now),
        },
        task: "jitgate-load-probe-task",
        resource: "jitgate-load-probe-resource",
        entitlement: "read",
        justification: "load-time check: what does this policy allow for a task nobody names?",
        requested_ttl: 3600,
        ticket: Some(wit::Ticket {
            id: "PROBE-1",
            state: wit::TicketState::InProgress,
            priority: 3,
            assignee: Some(subject),
            opened_at: now.saturating_sub(600),
        }),
        now,
        attributes: &[],
    };
    matches!(
        policy.evaluate(&req, limits).result,
        Ok(Verdict::Allow { .. } | Verdict::RequireApproval { .. })
    )
}

/// The `.wasm` files directly in `dir`, sorted by name.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |e| LoadError {
        path: dir.to_path_buf(),
        kind: LoadErrorKind::Io(e),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "wasm") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError {
            path: dir.to_path_buf(),
            kind: LoadErrorKind::Empty,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        version: &str,
        description: &str,
        tasks: &[&str],
    ) -> super::super::bindings::wit::PolicyInfo {
        super::super::bindings::wit::PolicyInfo {
            name: "p".into(),
            version: version.into(),
            description: description.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            max_ttl: 60,
        }
    }

    #[test]
    fn control_characters_in_info_strings_are_refused_naming_the_field() {
        check_info(&info("1.0", "fine", &["t"])).unwrap();
        // Unicode that is not a control character is fine.
        check_info(&info("1.0-ß", "réservé", &["tâche"])).unwrap();
        for (i, field) in [
            (info("1.0\u{1b}[2J", "d", &["t"]), "version"),
            (info("1.0", "line\nforged", &["t"]), "description"),
            (info("1.0", "d", &["t", "x\u{9b}31m"]), "tasks[1]"),
            (info("1.0", "\u{202e}evil", &["t"]), "description"),
        ] {
            let e = check_info(&i).unwrap_err();
            assert!(
                e.starts_with(&format!("{field} contains control character")),
                "{e}"
            );
            assert!(!e.chars().any(needs_escape), "{e:?}");
        }
    }

    #[test]
    fn bytes_that_do_not_parse_are_not_a_coverage_build() {
        for junk in [&b""[..], b"hello world", b"\0asm\x0d\0\x01\0\x00\xff\xff"] {
            assert!(!is_coverage_build(junk));
        }
    }

    #[test]
    fn header_distinguishes_kinds() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(LoadErrorKind::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(LoadErrorKind::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn surface_rules() {
        let ok = Surface {
            imports: vec![
                "jitgate:policy/types@0.1.0".into(),
                "jitgate:policy/host@0.1.0".into(),
            ],
            exports: vec!["jitgate:policy/policy@0.1.0".into()],
        };
        check_surface(&ok).unwrap();
        let fs = Surface {
            imports: vec![
                "wasi:filesystem/types@0.2.6".into(),
                "wasi:io/streams@0.2.6".into(),
            ],
            exports: ok.exports.clone(),
        };
        let e = check_surface(&fs).unwrap_err().to_string();
        assert!(
            e.contains("`wasi:filesystem/types@0.2.6`") && e.contains("wasi:io/streams"),
            "{e}"
        );
        let other = Surface {
            imports: vec![],
            exports: vec!["other:thing/greeter@0.1.0".into()],
        };
        let e = check_surface(&other).unwrap_err().to_string();
        assert!(e.contains("other:thing/greeter"), "{e}");
        // A look-alike package must not pass the prefix check.
        let fake = Surface {
            imports: vec!["jitgate:policy-evil/host@0.1.0".into()],
            exports: ok.exports,
        };
        assert!(check_surface(&fake).is_err());
    }
}
