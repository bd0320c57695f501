//! `jitgate new`: scaffold a policy crate anywhere, that builds with
//! `jitgate build` and passes `cargo test`, `jitgate test` and `jitgate
//! explore` (its `properties.yaml`) with no edit.
//!
//! What a first-time author tripped over is written into the files rather
//! than left to be discovered: `cdylib` (without it cargo prints `Finished`
//! and makes no `.wasm`), the `policy` profile, its own `[workspace]`, `no_std`
//! on wasm and why, and fixtures that find the module where `jitgate build`
//! writes it.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// Scaffold a policy crate.
#[derive(Args)]
pub struct NewArgs {
    /// The policy's name (lowercase letters, digits and `-`): the crate's
    /// folder, its package name and `NAME.wasm`.
    name: String,
    /// The task the policy decides (default: the policy's name).
    #[arg(long)]
    task: Option<String>,
    /// Where the jitgate SDK comes from: a folder (`path = …`) or a git URL
    /// (`git = …`, for `https://`, `ssh://`, `git@…` or `….git`). Default:
    /// the SDK folder of the jitgate source this binary was built from.
    #[arg(long)]
    sdk: Option<String>,
    /// Parent folder of the new crate (default: the current folder).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// A policy or task name: what the host accepts as a policy name and what
/// is safe as a folder, a package name and a file name.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The `jitgate-sdk = …` dependency line's value for `sdk`.
fn sdk_dependency(sdk: Option<&str>) -> Result<String> {
    let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
    match sdk {
        Some(s)
            if s.starts_with("https://")
                || s.starts_with("http://")
                || s.starts_with("ssh://")
                || s.starts_with("git@")
                || s.ends_with(".git") =>
        {
            Ok(format!("{{ git = {} }}", toml_str(s)))
        }
        Some(p) => {
            let path =
                std::fs::canonicalize(p).with_context(|| format!("--sdk {p}: no such folder"))?;
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk {p}: no Cargo.toml in {}", path.display());
            }
            Ok(format!(
                "{{ path = {} }}",
                toml_str(&path.to_string_lossy())
            ))
        }
        None => {
            let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
            let path = std::fs::canonicalize(&built_from).map_err(|_| {
                anyhow::anyhow!(
                    "this jitgate was not built from a source tree with its SDK ({}): pass --sdk PATH|GIT-URL",
                    built_from.display()
                )
            })?;
            Ok(format!(
                "{{ path = {} }}",
                toml_str(&path.to_string_lossy())
            ))
        }
    }
}

/// The files of a new crate, relative to its folder.
pub fn files(name: &str, task: &str, sdk_dep: &str) -> Vec<(&'static str, String)> {
    let lib = name.replace('-', "_");
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A policy is a WebAssembly component: `cdylib` makes the `.wasm`
# (without it cargo prints `Finished` and writes none), `rlib` lets
# `cargo test` run the rules natively.
[lib]
name = "{lib}"
crate-type = ["cdylib", "rlib"]

[dependencies]
jitgate-sdk = {sdk_dep}

# `jitgate build` builds with this profile: small, whole-program optimised,
# and a panic aborts (in the sandbox a trap, and a trap denies).
[profile.policy]
inherits = "release"
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false

# A workspace of its own, so the crate builds wherever it is placed (also
# inside another project's workspace).
[workspace]
"#
    );
    let lib_rs = format!(
        r#"//! `{name}`: a jitgate policy for the `{task}` task.
//!
//! `jitgate build` compiles it to `target/policies/{name}.wasm`;
//! `cargo test` runs the unit tests below natively; `jitgate test .` runs
//! `fixtures/{name}.yaml` against the compiled module through the host.
//!
//! Why `no_std` on wasm: a guest linked against `std` for `wasm32-wasip2`
//! imports WASI interfaces, and the host refuses any module that imports
//! more than its `log`. The SDK brings the allocator and the panic handler
//! instead, and its prelude has `String`, `Vec`, `format!` and `vec!`.
//! Native builds keep `std`, so a `std` use passes `cargo test` and fails
//! only `jitgate build`: build before you push.
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest grant this policy gives, in seconds.
pub const MAX_TTL: u32 = 3600;

/// The policy.
pub struct Rules;

impl Policy for Rules {{
    fn info() -> PolicyInfo {{
        PolicyInfo::new(
            "{name}",
            "0.1.0",
            "{task}: the helpdesk role, on an active ticket",
            &["{task}"],
            MAX_TTL,
        )
    }}

    fn evaluate(req: &Request) -> Verdict {{
        if !req.subject.has_role("helpdesk") {{
            return Verdict::deny("{task} requires the helpdesk role");
        }}
        let Some(ticket) = req.ticket.as_ref().filter(|t| t.is_active()) else {{
            return Verdict::deny("{task} requires an open or in-progress ticket");
        }};
        Verdict::allow_until_ticket_closed(
            clamp_ttl(req.requested_ttl, MAX_TTL),
            format!("{task} for ticket {{}}", ticket.id),
        )
    }}
}}

export_policy!(Rules);

#[cfg(test)]
mod tests {{
    use super::*;
    use jitgate_sdk::testing::{{RequestBuilder, expect_allow, expect_deny}};

    #[test]
    fn helpdesk_on_an_active_ticket_is_allowed_and_capped() {{
        let req = RequestBuilder::new("{task}").requested_ttl(7200).build();
        let terms = expect_allow(Rules::evaluate(&req));
        assert_eq!(terms.ttl, MAX_TTL);
        assert!(terms.revoke_on_ticket_close);
    }}

    #[test]
    fn without_the_helpdesk_role_it_is_denied() {{
        let req = RequestBuilder::new("{task}").roles(&["sre"]).build();
        assert!(expect_deny(Rules::evaluate(&req)).contains("helpdesk role"));
    }}

    #[test]
    fn a_resolved_ticket_is_denied() {{
        let req = RequestBuilder::new("{task}")
            .ticket(TicketState::Resolved, 3, None)
            .build();
        assert!(expect_deny(Rules::evaluate(&req)).contains("open or in-progress"));
    }}
}}
"#
    );
    let fixture = format!(
        r#"# Cases for `jitgate test .`: each request goes through the host
# (validation, sandbox, combination) against the module `jitgate build`
# wrote. Format: the jitgate docs, docs/fixtures.md.
policies: [../target/policies/{name}.wasm]

defaults:
  subject:
    id: alice
    kind: human
    roles: [helpdesk]
    groups: []
  task: {task}
  resource: fileserver-01
  entitlement: operator
  justification: the work the ticket asks for
  requested-ttl: 1800
  ticket:
    id: INC-1
    state: open
    priority: 3
    assignee: alice
    opened-at: 2026-11-25T09:00:00Z
  now: 2026-11-25T10:00:00Z

cases:
  - name: helpdesk on an active ticket is allowed
    expect:
      outcome: allow
      ttl: 1800
      revoke-on-ticket-close: true
      reasons-exact: ["{name}: {task} for ticket INC-1"]

  - name: without the helpdesk role it is denied
    request: {{subject: {{roles: [sre]}}}}
    expect:
      outcome: deny
      reasons: ["requires the helpdesk role"]

  - name: a resolved ticket is denied
    request: {{ticket: {{state: resolved}}}}
    expect:
      outcome: deny
      reasons: ["requires an open or in-progress ticket"]

  - name: a zero ttl is invalid
    request: {{requested-ttl: 0}}
    expect:
      outcome: invalid
      field: requested-ttl
"#
    );
    let properties = format!(
        r#"# Invariants for `jitgate explore . --properties properties.yaml`: it
# generates requests over what the policy declares and the fixtures use
# (roles, ticket states, times, TTLs around every bound) and checks each
# property on every decision. Format: the jitgate docs, docs/properties.md.
properties:
  - name: only an open or in-progress ticket yields access
    never:
      outcome: allow
      when: {{ticket.state: [none, on-hold, resolved, closed]}}

  - name: without the helpdesk role nothing is granted
    never:
      outcome: allow
      when: {{task: {task}}}
      unless: {{subject.roles: helpdesk}}

  - name: no grant lasts longer than the policy's max-ttl
    always:
      ttl: {{max: 3600}}
      when: {{task: {task}}}

  - name: a grant ends with its ticket
    never:
      outcome: allow
      revoke-on-ticket-close: false
"#
    );
    let gitignore = "/target\nCargo.lock\n".to_string();
    vec![
        ("Cargo.toml", cargo),
        ("src/lib.rs", lib_rs),
        ("fixtures/policy.yaml", fixture),
        ("properties.yaml", properties),
        (".gitignore", gitignore),
    ]
}

/// Write the crate; refuses to touch an existing folder.
pub fn run(args: NewArgs) -> Result<()> {
    if !valid_name(&args.name) {
        bail!(
            "name {:?}: use lowercase letters, digits and `-`, starting with a letter (at most 64)",
            args.name
        );
    }
    let task = args.task.unwrap_or_else(|| args.name.clone());
    if !valid_name(&task) {
        bail!("--task {task:?}: use lowercase letters, digits and `-`, starting with a letter");
    }
    let root = args.dir.join(&args.name);
    if root.exists() {
        bail!("{} already exists: nothing written", root.display());
    }
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    for (rel, text) in files(&args.name, &task, &sdk) {
        // The fixture is named after the policy, where authors look for it.
        let rel = if rel == "fixtures/policy.yaml" {
            format!("fixtures/{}.yaml", args.name)
        } else {
            rel.to_string()
        };
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("created {}", root.display());
    println!(
        "  cd {} && cargo test && jitgate build && jitgate test . --coverage --min 100 && jitgate explore . --properties properties.yaml",
        root.display()
    );
    Ok(())
}

#[cfg(test)]
mod hostile_sdk_tests {
    use super::*;

    /// `--sdk` lands in the new crate's Cargo.toml: quotes, newlines and
    /// TOML syntax in it must stay one string value, never new keys or
    /// tables (`x" }\n[patch.crates-io]\n…`).
    #[test]
    fn an_sdk_value_with_quotes_or_newlines_cannot_inject_toml() {
        let hostile =
            "https://evil.example/x\" }\n[patch.crates-io]\nserde = { path = \"/tmp\" }\n#.git";
        let dep = sdk_dependency(Some(hostile)).expect("a git URL");
        let manifest = files("demo", "demo", &dep)
            .into_iter()
            .find(|(rel, _)| *rel == "Cargo.toml")
            .map(|(_, text)| text)
            .expect("Cargo.toml");
        let parsed: toml::Table = manifest.parse().expect("still valid TOML");
        assert!(parsed.get("patch").is_none(), "{manifest}");
        let git = parsed["dependencies"]["jitgate-sdk"]["git"].as_str();
        assert_eq!(
            git,
            Some(hostile),
            "the value is kept exactly, as one string"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let odd = dir.path().join("sdk \"with\"\nnewline");
        std::fs::create_dir_all(&odd).expect("dir");
        std::fs::write(odd.join("Cargo.toml"), "").expect("manifest");
        let dep = sdk_dependency(Some(&odd.to_string_lossy())).expect("a path");
        let manifest = files("demo", "demo", &dep)
            .into_iter()
            .find(|(rel, _)| *rel == "Cargo.toml")
            .map(|(_, text)| text)
            .expect("Cargo.toml");
        let parsed: toml::Table = manifest.parse().expect("still valid TOML");
        let path = parsed["dependencies"]["jitgate-sdk"]["path"]
            .as_str()
            .unwrap_or("");
        assert!(path.ends_with("sdk \"with\"\nnewline"), "{path:?}");
    }
}
