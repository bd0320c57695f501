//! `jitgate build`: compile a policy crate for `wasm32-wasip2` with the
//! `policy` profile and write `target/policies/NAME.wasm` in the crate,
//! where its fixtures find it under the policy's own (hyphenated) name.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Build a policy crate into `target/policies/NAME.wasm`.
#[derive(Args)]
pub struct BuildArgs {
    /// The policy crate's folder (holding its Cargo.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// The package's name, from its manifest.
pub(crate) fn package_name(manifest: &Path) -> Result<String> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", manifest.display()))?;
    let package = value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{}: no [package] name", manifest.display()))?;
    Ok(package.to_string())
}

/// `rustup target add wasm32-wasip2` when rustup lacks it (a machine
/// without rustup is left to cargo's own error).
fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = installed
        && out.status.success()
        && !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2")
    {
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
    }
}

/// The `.wasm` files cargo reports writing, from its JSON messages.
fn wasm_artifacts(stdout: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg.get("reason").and_then(|r| r.as_str()) != Some("compiler-artifact") {
            continue;
        }
        for f in msg
            .get("filenames")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                out.push(PathBuf::from(f));
            }
        }
    }
    out
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo build` the crate of `manifest` for `wasm32-wasip2` with the
/// policy profile (and `extra` arguments); the one `.wasm` it wrote.
pub(crate) fn cargo_build(manifest: &Path, extra: &[&std::ffi::OsStr]) -> Result<PathBuf> {
    ensure_target();
    let out = cargo()
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .args([
            "--target",
            "wasm32-wasip2",
            "--profile",
            "policy",
            "--message-format=json-render-diagnostics",
        ])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("cargo build failed for {}", manifest.display());
    }
    let wasm = wasm_artifacts(&String::from_utf8_lossy(&out.stdout));
    let [module] = wasm.as_slice() else {
        bail!(
            "cargo built {} .wasm files for {} (want exactly one: is `crate-type = [\"cdylib\", \"rlib\"]` in [lib]?)",
            wasm.len(),
            manifest.display()
        );
    };
    Ok(module.clone())
}

/// The target folder cargo uses for the crate of `manifest` (its
/// workspace's, or `CARGO_TARGET_DIR`).
pub(crate) fn target_dir(manifest: &Path) -> Result<PathBuf> {
    let out = cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed for {}", manifest.display());
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    meta.get("target_directory")
        .and_then(|t| t.as_str())
        .map(PathBuf::from)
        .context("cargo metadata names no target_directory")
}

/// Build and copy; prints where the module went.
pub fn run(args: BuildArgs) -> Result<PathBuf> {
    let manifest = args.dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{}: no Cargo.toml (is this a policy crate?)",
            args.dir.display()
        );
    }
    let name = package_name(&manifest)?;
    let module = &cargo_build(&manifest, &[])?;
    let dest_dir = args.dir.join("target/policies");
    std::fs::create_dir_all(&dest_dir)
        .with_context(|| format!("creating {}", dest_dir.display()))?;
    let dest = dest_dir.join(format!("{name}.wasm"));
    // Copied, not linked: the copy's time is the build's, which is what
    // `jitgate test` compares with the sources to refuse a stale module.
    std::fs::copy(module, &dest)
        .with_context(|| format!("copying {} to {}", module.display(), dest.display()))?;
    println!("built {}", dest.display());
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasm_artifacts_are_taken_from_cargos_messages() {
        let stdout = concat!(
            r#"{"reason":"compiler-artifact","filenames":["/t/libdep.rlib"]}"#,
            "\n",
            "not json\n",
            r#"{"reason":"compiler-artifact","filenames":["/t/wasm32-wasip2/policy/my_policy.wasm","/t/libmy_policy.rlib"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            wasm_artifacts(stdout),
            vec![PathBuf::from("/t/wasm32-wasip2/policy/my_policy.wasm")]
        );
    }
}
