//! `jitgate test --coverage`: which `Verdict` constructors of each policy
//! crate the fixture cases reached, and which they never did.
//!
//! Each policy crate that owns a fixture file (`<crate>/fixtures/*.yaml`)
//! is built once more with the SDK's `coverage` feature, into
//! `<its cargo target folder>/jitgate-coverage/` (its ordinary module is
//! left alone). In that build every constructor (`Verdict::allow`,
//! `deny`, `require_approval`, …, `not_applicable`) reports the
//! `file:line:column` it was called from through the contract's existing
//! `log` import; the engine, in coverage mode only, takes those markers out
//! of the log. The sites that *could* be reached are read from the crate's
//! sources: every constructor call outside `#[cfg(test)]` items, following
//! the crate's `mod` declarations from its library root.

use anyhow::{Context, Result, bail};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jitgate::text::terminal_safe;

/// The constructor functions the SDK reports from (`#[track_caller]`).
const CONSTRUCTORS: [&str; 6] = [
    "allow",
    "allow_until_ticket_closed",
    "deny",
    "require_approval",
    "require_approval_until_ticket_closed",
    "not_applicable",
];

/// A comment on a constructor's line, or the line above it, that takes the
/// site out of the count; the rest of the comment says why it cannot be
/// reached (e.g. the host refuses such a request before any policy runs).
pub const UNREACHABLE: &str = "jitgate-coverage: unreachable";

/// The enum's variants: building one directly is not tracked.
const VARIANTS: [&str; 4] = ["Allow", "Deny", "RequireApproval", "NotApplicable"];

/// A source file larger than this is not scanned (an error).
const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// Nesting of `mod` files followed; deeper is an error.
const MAX_MOD_DEPTH: usize = 64;

/// One place in a source file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// The file, as found from the crate folder.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters), as `core::panic::Location` counts.
    pub column: usize,
    /// What is there, e.g. `Verdict::deny`.
    pub what: String,
}

/// The sites of one crate's library.
#[derive(Debug, Default)]
pub struct Sites {
    /// Constructor calls: the branches coverage counts.
    pub tracked: Vec<Site>,
    /// Verdicts built another way (a variant written out, a constructor
    /// used as a function value): reaching them is not reported.
    pub untracked: Vec<Site>,
    /// Constructor calls marked [`UNREACHABLE`], with the reason given.
    pub unreachable: Vec<(Site, String)>,
}

/// A policy crate whose fixtures run.
#[derive(Debug)]
pub struct PolicyCrate {
    /// Its folder.
    pub dir: PathBuf,
    /// Names a fixture may load its module by (folder, package and lib
    /// name, `_` written `-`).
    pub names: Vec<String>,
    /// The library root (`src/lib.rs` unless `[lib] path` says otherwise).
    pub lib_root: PathBuf,
}

/// The policy crates owning `fixtures` (files in `<crate>/fixtures/`
/// beside a `Cargo.toml`), each once, in order.
pub fn crates_of(fixtures: &[PathBuf]) -> Result<Vec<PolicyCrate>> {
    let mut out: Vec<PolicyCrate> = Vec::new();
    for f in fixtures {
        let Some(dir) = f
            .parent()
            .filter(|d| d.file_name().is_some_and(|n| n == "fixtures"))
            .and_then(Path::parent)
        else {
            continue;
        };
        // `./fixtures/x.yaml` → `src/lib.rs`, not `./src/lib.rs`.
        let dir: PathBuf = dir
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() || out.iter().any(|c| c.dir == dir) {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", manifest.display()))?;
        let package = super::build::package_name(&manifest)?;
        let lib = table.get("lib");
        let lib_name = lib
            .and_then(|l| l.get("name"))
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| package.clone());
        let lib_root = dir.join(
            lib.and_then(|l| l.get("path"))
                .and_then(toml::Value::as_str)
                .unwrap_or("src/lib.rs"),
        );
        let mut names = vec![package.replace('_', "-"), lib_name.replace('_', "-")];
        let here = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        if let Some(d) = std::fs::canonicalize(here)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().replace('_', "-")))
        {
            names.push(d);
        }
        names.sort();
        names.dedup();
        out.push(PolicyCrate {
            dir,
            names,
            lib_root,
        });
    }
    Ok(out)
}

/// Build `krate` with the SDK's `coverage` feature into its target
/// folder's `jitgate-coverage/`; the module's path.
pub fn build(krate: &PolicyCrate) -> Result<PathBuf> {
    let manifest = krate.dir.join("Cargo.toml");
    let target = super::build::target_dir(&manifest)?.join("jitgate-coverage");
    super::build::cargo_build(
        &manifest,
        &[
            "--features".as_ref(),
            "jitgate-sdk/coverage".as_ref(),
            "--target-dir".as_ref(),
            target.as_os_str(),
        ],
    )
    .with_context(|| {
        format!(
            "building the coverage variant of {} (its jitgate-sdk needs the `coverage` feature)",
            krate.dir.display()
        )
    })
}

/// Every constructor site of `krate`'s library outside `#[cfg(test)]`.
pub fn sites(krate: &PolicyCrate) -> Result<Sites> {
    let mut sites = Sites::default();
    let mut seen = BTreeSet::new();
    let mod_dir = krate
        .lib_root
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    scan_file(&krate.lib_root, &mod_dir, 0, &mut seen, &mut sites)?;
    sites.tracked.sort();
    sites.untracked.sort();
    sites.unreachable.sort();
    Ok(sites)
}

fn scan_file(
    file: &Path,
    mod_dir: &Path,
    depth: usize,
    seen: &mut BTreeSet<PathBuf>,
    sites: &mut Sites,
) -> Result<()> {
    if depth > MAX_MOD_DEPTH {
        bail!(
            "{}: modules nested deeper than {MAX_MOD_DEPTH}",
            file.display()
        );
    }
    if !seen.insert(file.to_path_buf()) {
        return Ok(());
    }
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > MAX_SOURCE_BYTES {
        bail!(
            "{}: {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit for a scanned source",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let tokens: TokenStream = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: not Rust: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut scan = Scan {
        file,
        lines: &lines,
        depth,
        seen,
        sites,
    };
    scan.walk(tokens, mod_dir, false)
}

struct Scan<'a> {
    file: &'a Path,
    lines: &'a [&'a str],
    depth: usize,
    seen: &'a mut BTreeSet<PathBuf>,
    sites: &'a mut Sites,
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn ident_is(t: Option<&TokenTree>, s: &str) -> bool {
    matches!(t, Some(TokenTree::Ident(i)) if i == s)
}

/// `cfg(test)`, or an `all(..)` that needs `test`: code that exists only
/// in the crate's own unit tests.
fn is_cfg_test(attr: &TokenStream) -> bool {
    let toks: Vec<TokenTree> = attr.clone().into_iter().collect();
    if !ident_is(toks.first(), "cfg") {
        return false;
    }
    let Some(TokenTree::Group(g)) = toks.get(1) else {
        return false;
    };
    needs_test(g.stream())
}

fn needs_test(pred: TokenStream) -> bool {
    let toks: Vec<TokenTree> = pred.into_iter().collect();
    match toks.as_slice() {
        [TokenTree::Ident(i)] => i == "test",
        [TokenTree::Ident(i), TokenTree::Group(g)] if i == "all" => g
            .stream()
            .into_iter()
            .collect::<Vec<_>>()
            .split(|t| is_punct(Some(t), ','))
            .any(|part| needs_test(part.iter().cloned().collect())),
        _ => false,
    }
}

/// `#[path = "…"]`.
fn path_attr(attr: &TokenStream) -> Option<String> {
    let toks: Vec<TokenTree> = attr.clone().into_iter().collect();
    match toks.as_slice() {
        [
            TokenTree::Ident(i),
            TokenTree::Punct(p),
            TokenTree::Literal(l),
        ] if i == "path" && p.as_char() == '=' => {
            let s = l.to_string();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_string)
        }
        _ => None,
    }
}

impl Scan<'_> {
    fn site(&self, t: &TokenTree, what: String) -> Site {
        let at = t.span().start();
        Site {
            file: self.file.to_path_buf(),
            line: at.line,
            column: at.column + 1,
            what,
        }
    }

    /// Walk one token stream; `in_pattern`: inside `matches!(…)`, where a
    /// variant is a pattern, not a construction.
    fn walk(&mut self, tokens: TokenStream, mod_dir: &Path, in_pattern: bool) -> Result<()> {
        let toks: Vec<TokenTree> = tokens.into_iter().collect();
        let mut path_override: Option<String> = None;
        let mut i = 0;
        while i < toks.len() {
            // Attributes: `#[…]` and `#![…]`.
            if is_punct(toks.get(i), '#') {
                let inner = is_punct(toks.get(i + 1), '!');
                let at = if inner { i + 2 } else { i + 1 };
                if let Some(TokenTree::Group(g)) = toks.get(at)
                    && g.delimiter() == Delimiter::Bracket
                {
                    let attr = g.stream();
                    if is_cfg_test(&attr) {
                        if inner {
                            // The whole file or module is test code.
                            return Ok(());
                        }
                        i = skip_item(&toks, at + 1);
                        path_override = None;
                        continue;
                    }
                    if let Some(p) = path_attr(&attr) {
                        path_override = Some(p);
                    }
                    i = at + 1;
                    continue;
                }
            }
            match &toks[i] {
                TokenTree::Ident(id) if id == "mod" => {
                    if let Some(TokenTree::Ident(name)) = toks.get(i + 1) {
                        let name = name.to_string();
                        let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
                        match toks.get(i + 2) {
                            Some(TokenTree::Punct(p)) if p.as_char() == ';' => {
                                self.module_file(mod_dir, &name, path_override.take())?;
                                i += 3;
                                continue;
                            }
                            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                                self.walk(g.stream(), &mod_dir.join(&name), false)?;
                                path_override = None;
                                i += 3;
                                continue;
                            }
                            _ => {}
                        }
                    }
                }
                TokenTree::Ident(id) if id == "matches" && is_punct(toks.get(i + 1), '!') => {
                    if let Some(TokenTree::Group(g)) = toks.get(i + 2) {
                        self.walk(g.stream(), mod_dir, true)?;
                        i += 3;
                        continue;
                    }
                }
                TokenTree::Ident(id)
                    if id == "Verdict"
                        && is_punct(toks.get(i + 1), ':')
                        && is_punct(toks.get(i + 2), ':') =>
                {
                    if let Some(TokenTree::Ident(name)) = toks.get(i + 3) {
                        let name = name.to_string();
                        let start = path_start(&toks, i);
                        let called = matches!(toks.get(i + 4), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
                        if CONSTRUCTORS.contains(&name.as_str()) {
                            let what = format!("Verdict::{name}");
                            if called {
                                let site = self.site(&toks[start], what);
                                match self.unreachable_note(site.line) {
                                    Some(why) => self.sites.unreachable.push((site, why)),
                                    None => self.sites.tracked.push(site),
                                }
                            } else {
                                let site = self.site(&toks[start], format!("{what} (as a value)"));
                                self.sites.untracked.push(site);
                            }
                        } else if VARIANTS.contains(&name.as_str())
                            && !in_pattern
                            && is_construction(&toks, start, i + 4)
                        {
                            let site = self.site(&toks[start], format!("Verdict::{name}"));
                            self.sites.untracked.push(site);
                        }
                        i += 4;
                        continue;
                    }
                }
                TokenTree::Group(g) => {
                    self.walk(g.stream(), mod_dir, in_pattern)?;
                }
                _ => {}
            }
            // A `#[path]` belongs to the next item only.
            if matches!(&toks[i], TokenTree::Punct(p) if p.as_char() == ';')
                || matches!(&toks[i], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)
            {
                path_override = None;
            }
            i += 1;
        }
        Ok(())
    }

    /// The reason of an [`UNREACHABLE`] comment on `line` or the line
    /// above it.
    fn unreachable_note(&self, line: usize) -> Option<String> {
        [line, line.saturating_sub(1)]
            .into_iter()
            .filter(|&l| l >= 1)
            .filter_map(|l| self.lines.get(l - 1))
            .find_map(|text| {
                let (_, rest) = text.split_once(UNREACHABLE)?;
                Some(rest.trim_start_matches([':', ' ']).trim().to_string())
            })
    }

    fn module_file(&mut self, mod_dir: &Path, name: &str, over: Option<String>) -> Result<()> {
        let (file, child_dir) = match over {
            Some(p) => {
                let base = self.file.parent().unwrap_or(Path::new("."));
                let file = base.join(p);
                let dir = file.with_extension("");
                (file, dir)
            }
            None => {
                let flat = mod_dir.join(format!("{name}.rs"));
                if flat.is_file() {
                    (flat, mod_dir.join(name))
                } else {
                    (mod_dir.join(name).join("mod.rs"), mod_dir.join(name))
                }
            }
        };
        if !file.is_file() {
            bail!(
                "{}: `mod {name};` but no {} (is the crate building?)",
                self.file.display(),
                file.display()
            );
        }
        scan_file(&file, &child_dir, self.depth + 1, self.seen, self.sites)
    }
}

/// Where the path ending in `toks[i]` (`Verdict`) starts: `a::b::Verdict`
/// and `::a::Verdict` start at their first token, as the caller location
/// rustc reports for the call does.
fn path_start(toks: &[TokenTree], i: usize) -> usize {
    let mut j = i;
    while j >= 3
        && is_punct(toks.get(j - 1), ':')
        && is_punct(toks.get(j - 2), ':')
        && matches!(toks.get(j - 3), Some(TokenTree::Ident(_)))
    {
        j -= 3;
    }
    if j >= 2 && is_punct(toks.get(j - 1), ':') && is_punct(toks.get(j - 2), ':') {
        j -= 2;
    }
    j
}

/// Whether `Verdict::Variant` at `start` (its next token at `next`) is a
/// value being built rather than a pattern: not followed by `=>`, `|`,
/// `if`, `=` or `@` (after its fields), nor preceded by `let` or `|`.
fn is_construction(toks: &[TokenTree], start: usize, next: usize) -> bool {
    let mut k = next;
    if matches!(toks.get(k), Some(TokenTree::Group(g)) if g.delimiter() != Delimiter::Bracket) {
        k += 1;
    }
    let after_pattern = match toks.get(k) {
        Some(TokenTree::Punct(p)) => {
            matches!(p.as_char(), '|' | '@')
                || (p.as_char() == '=' && !is_punct(toks.get(k + 1), '='))
        }
        Some(TokenTree::Ident(id)) => id == "if",
        _ => false,
    };
    let before_pattern =
        start > 0 && (ident_is(toks.get(start - 1), "let") || is_punct(toks.get(start - 1), '|'));
    !(after_pattern || before_pattern)
}

/// The index after the item starting at `i`: more attributes, then tokens
/// up to and including the first `{…}` block or `;` of this level.
fn skip_item(toks: &[TokenTree], mut i: usize) -> usize {
    while i < toks.len() {
        match &toks[i] {
            TokenTree::Punct(p) if p.as_char() == ';' => return i + 1,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                // `struct S { … }`, `fn f() { … }`, `mod m { … }`; a `;`
                // right after (a `const X: T = T { … };`) belongs to it.
                return if is_punct(toks.get(i + 1), ';') {
                    i + 2
                } else {
                    i + 1
                };
            }
            _ => i += 1,
        }
    }
    i
}

/// One file's result.
#[derive(Debug, Default)]
pub struct FileCoverage {
    /// Rows whose every site was reached.
    pub covered: BTreeSet<usize>,
    /// Rows with a site never reached, with the sites.
    pub not_covered: BTreeMap<usize, Vec<Site>>,
}

impl FileCoverage {
    fn percent(&self) -> f64 {
        percent(self.covered.len(), self.not_covered.len())
    }
}

fn percent(covered: usize, not_covered: usize) -> f64 {
    let total = covered + not_covered;
    if total == 0 {
        0.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

/// The coverage of every policy crate.
#[derive(Debug, Default)]
pub struct Coverage {
    /// By file (as found from the crate folder).
    pub files: BTreeMap<PathBuf, FileCoverage>,
    /// Verdicts whose reaching is not reported.
    pub untracked: Vec<Site>,
    /// Sites marked unreachable, the reason, and whether a case reached
    /// one all the same (then the note is wrong).
    pub unreachable: Vec<(Site, String, bool)>,
    /// Markers that match no constructor site of their module's crate.
    pub unmatched: usize,
}

impl Coverage {
    /// Total rows covered and not covered.
    pub fn totals(&self) -> (usize, usize) {
        self.files.values().fold((0, 0), |(c, n), f| {
            (c + f.covered.len(), n + f.not_covered.len())
        })
    }

    /// Total coverage, percent (0 when there is no site at all).
    pub fn percent(&self) -> f64 {
        let (c, n) = self.totals();
        percent(c, n)
    }
}

/// A marker `LINE:COLUMN FILE` (the SDK's format after its prefix).
fn parse_marker(m: &str) -> Option<(usize, usize, &str)> {
    let (at, file) = m.split_once(' ')?;
    let (line, column) = at.split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?, file))
}

/// Whether `marker_file` (as rustc named it: relative to the workspace it
/// was built in, or absolute) is `site_file`.
fn same_file(site_file: &Path, marker_file: &str) -> bool {
    let marker = Path::new(marker_file);
    let canonical = std::fs::canonicalize(site_file).unwrap_or_else(|_| site_file.to_path_buf());
    if marker.is_absolute() {
        std::fs::canonicalize(marker).is_ok_and(|m| m == canonical)
    } else {
        !marker_file.is_empty() && canonical.ends_with(marker)
    }
}

/// Match the markers each crate's module reached to its sites.
pub fn measure(crates: &[(Sites, BTreeSet<String>)]) -> Coverage {
    let mut cov = Coverage::default();
    for (sites, hits) in crates {
        let mut reached = vec![false; sites.tracked.len()];
        let mut unreachable: Vec<(Site, String, bool)> = sites
            .unreachable
            .iter()
            .map(|(s, why)| (s.clone(), why.clone(), false))
            .collect();
        for m in hits {
            let Some((line, column, file)) = parse_marker(m) else {
                cov.unmatched += 1;
                continue;
            };
            if let Some(u) = unreachable
                .iter_mut()
                .find(|u| u.0.line == line && u.0.column == column && same_file(&u.0.file, file))
            {
                u.2 = true;
                continue;
            }
            let on_line: Vec<usize> = (0..sites.tracked.len())
                .filter(|&k| {
                    sites.tracked[k].line == line && same_file(&sites.tracked[k].file, file)
                })
                .collect();
            let exact = on_line
                .iter()
                .copied()
                .find(|&k| sites.tracked[k].column == column);
            match (exact, on_line.as_slice()) {
                (Some(k), _) | (None, &[k]) => reached[k] = true,
                _ => cov.unmatched += 1,
            }
        }
        for (site, hit) in sites.tracked.iter().zip(reached) {
            let f = cov.files.entry(site.file.clone()).or_default();
            if !hit {
                f.covered.remove(&site.line);
                f.not_covered
                    .entry(site.line)
                    .or_default()
                    .push(site.clone());
            } else if !f.not_covered.contains_key(&site.line) {
                f.covered.insert(site.line);
            }
        }
        cov.untracked.extend(sites.untracked.iter().cloned());
        cov.unreachable.extend(unreachable);
    }
    cov
}

/// Consecutive rows as `{start, end}` ranges, as `opa test --coverage`.
fn ranges(rows: impl Iterator<Item = usize>) -> Vec<serde_json::Value> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == r => *end = r,
            _ => out.push((r, r)),
        }
    }
    out.into_iter()
        .map(|(s, e)| json!({"start": {"row": s}, "end": {"row": e}}))
        .collect()
}

/// The report in the shape of `opa test --coverage --format json`.
pub fn to_json(cov: &Coverage) -> serde_json::Value {
    let mut files = serde_json::Map::new();
    for (path, f) in &cov.files {
        files.insert(
            path.display().to_string(),
            json!({
                "covered": ranges(f.covered.iter().copied()),
                "not_covered": ranges(f.not_covered.keys().copied()),
                "covered_lines": f.covered.len(),
                "not_covered_lines": f.not_covered.len(),
                "coverage": f.percent(),
            }),
        );
    }
    let (c, n) = cov.totals();
    let mut out = json!({
        "files": files,
        "covered_lines": c,
        "not_covered_lines": n,
        "coverage": cov.percent(),
    });
    if !cov.untracked.is_empty()
        && let Some(o) = out.as_object_mut()
    {
        o.insert(
            "untracked".into(),
            cov.untracked
                .iter()
                .map(|s| json!({"file": s.file.display().to_string(), "row": s.line, "what": s.what}))
                .collect(),
        );
    }
    if !cov.unreachable.is_empty()
        && let Some(o) = out.as_object_mut()
    {
        o.insert(
            "unreachable".into(),
            cov.unreachable
                .iter()
                .map(|(s, why, hit)| {
                    json!({"file": s.file.display().to_string(), "row": s.line, "what": s.what, "reason": why, "reached": hit})
                })
                .collect(),
        );
    }
    out
}

/// The report for a terminal: every file's figure, every line never
/// reached, the total.
pub fn to_text(cov: &Coverage) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (path, f) in &cov.files {
        let shown = path.display().to_string();
        let shown = terminal_safe(&shown);
        let _ = writeln!(
            out,
            "coverage {shown}: {:.1} % ({} of {} verdict lines reached)",
            f.percent(),
            f.covered.len(),
            f.covered.len() + f.not_covered.len()
        );
        for (line, sites) in &f.not_covered {
            let what: Vec<&str> = sites.iter().map(|s| s.what.as_str()).collect();
            let _ = writeln!(
                out,
                "  not reached  {shown}:{line}  {}",
                terminal_safe(&what.join(", "))
            );
        }
    }
    for s in &cov.untracked {
        let _ = writeln!(
            out,
            "untracked  {}:{}  {} (not a constructor call: reaching it is not recorded; call the Verdict constructor function)",
            terminal_safe(&s.file.display().to_string()),
            s.line,
            terminal_safe(&s.what)
        );
    }
    for (s, why, hit) in &cov.unreachable {
        let _ = writeln!(
            out,
            "{}  {}:{}  {}: {}",
            if *hit {
                "marked unreachable but REACHED"
            } else {
                "unreachable (not counted)"
            },
            terminal_safe(&s.file.display().to_string()),
            s.line,
            terminal_safe(&s.what),
            terminal_safe(why)
        );
    }
    if cov.unmatched > 0 {
        let _ = writeln!(
            out,
            "{} coverage marker(s) matched no constructor in the sources (ignored)",
            cov.unmatched
        );
    }
    let (c, n) = cov.totals();
    let _ = writeln!(
        out,
        "coverage total: {:.1} % ({c} of {} verdict lines reached)",
        cov.percent(),
        c + n
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(src: &str) -> Sites {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("src/lib.rs");
        std::fs::create_dir_all(lib.parent().expect("src")).expect("mkdir");
        std::fs::write(&lib, src).expect("write");
        let krate = PolicyCrate {
            dir: dir.path().to_path_buf(),
            names: vec!["p".into()],
            lib_root: lib,
        };
        sites(&krate).expect("scan")
    }

    fn lines(s: &[Site]) -> Vec<(usize, usize, &str)> {
        s.iter()
            .map(|s| (s.line, s.column, s.what.as_str()))
            .collect()
    }

    #[test]
    fn constructor_calls_outside_test_code_are_sites_with_their_caller_column() {
        let src = r#"use jitgate_sdk::prelude::*;
fn judge(r: &Request) -> Verdict {
    if r.ticket.is_none() { return Verdict::deny("no ticket"); }
    // Verdict::allow(1, "in a comment")
    let s = "Verdict::allow(1, \"in a string\")";
    if s.is_empty() { jitgate_sdk::Verdict::not_applicable() } else {
        Verdict::require_approval(&["a"], 1, 60, format!("{}", s))
    }
}
#[cfg(test)]
mod tests {
    fn t() { let _ = Verdict::allow(1, "test only"); }
}
#[cfg(all(test, feature = "x"))]
fn helper() -> Verdict { Verdict::deny("test only") }
#[cfg(not(test))]
fn prod() -> Verdict { Verdict::allow_until_ticket_closed(5, "prod") }
"#;
        let s = scan(src);
        assert_eq!(
            lines(&s.tracked),
            [
                (3, 36, "Verdict::deny"),
                (6, 23, "Verdict::not_applicable"),
                (7, 9, "Verdict::require_approval"),
                (17, 24, "Verdict::allow_until_ticket_closed"),
            ]
        );
        assert!(s.untracked.is_empty(), "{:?}", s.untracked);
    }

    #[test]
    fn variants_built_directly_are_untracked_and_patterns_are_not() {
        let src = r#"fn f(v: Verdict) -> Verdict {
    match v {
        Verdict::Allow(_) | Verdict::Deny(_) => {}
        Verdict::NotApplicable => {}
        _ => {}
    }
    if let Verdict::Deny(r) = &v { let _ = r; }
    let ok = matches!(v, Verdict::NotApplicable);
    let g = Some(1).map(|_| Verdict::deny);
    Verdict::NotApplicable
}
"#;
        let s = scan(src);
        assert!(s.tracked.is_empty(), "{:?}", s.tracked);
        assert_eq!(
            lines(&s.untracked),
            [
                (9, 29, "Verdict::deny (as a value)"),
                (10, 5, "Verdict::NotApplicable")
            ]
        );
    }

    #[test]
    fn a_site_noted_unreachable_is_not_counted_and_reaching_it_is_reported() {
        let src = "fn f(p: u8) -> Verdict {
    match p {
        1 => Verdict::allow(60, \"ok\"),
        // jitgate-coverage: unreachable: the host refuses it
        _ => Verdict::deny(\"bad\"),
    }
}
";
        let s = scan(src);
        assert_eq!(lines(&s.tracked), [(3, 14, "Verdict::allow")]);
        assert_eq!(s.unreachable.len(), 1);
        assert_eq!(
            (s.unreachable[0].0.line, s.unreachable[0].1.as_str()),
            (5, "the host refuses it")
        );
        // As rustc names a crate's file: relative to its workspace root.
        let hits: BTreeSet<String> = ["3:14 src/lib.rs", "5:14 src/lib.rs"]
            .into_iter()
            .map(String::from)
            .collect();
        let cov = measure(&[(s, hits)]);
        assert_eq!(cov.percent(), 100.0);
        assert!(cov.unreachable[0].2, "reaching it is recorded");
        assert_eq!(cov.unmatched, 0);
        assert!(to_text(&cov).contains("marked unreachable but REACHED"));
    }

    #[test]
    fn module_files_are_followed_and_test_modules_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("rules")).expect("mkdir");
        std::fs::write(src.join("lib.rs"), "mod rules;\n#[cfg(test)]\nmod tests;\n").expect("lib");
        std::fs::write(src.join("rules.rs"), "mod deep;\n").expect("rules");
        std::fs::write(
            src.join("rules/deep.rs"),
            "fn f() -> Verdict {\n    Verdict::deny(\"x\")\n}\n",
        )
        .expect("deep");
        std::fs::write(
            src.join("tests.rs"),
            "fn t() { Verdict::allow(1, \"t\"); }\n",
        )
        .expect("tests");
        std::fs::write(
            src.join("stray.rs"),
            "fn s() { Verdict::allow(1, \"s\"); }\n",
        )
        .expect("stray");
        let krate = PolicyCrate {
            dir: dir.path().to_path_buf(),
            names: vec![],
            lib_root: src.join("lib.rs"),
        };
        let s = sites(&krate).expect("scan");
        assert_eq!(s.tracked.len(), 1, "{:?}", s.tracked);
        assert_eq!(s.tracked[0].file, src.join("rules/deep.rs"));
        assert_eq!((s.tracked[0].line, s.tracked[0].column), (2, 5));
    }

    #[test]
    fn markers_are_matched_by_file_suffix_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("policies/p/src/lib.rs");
        std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
        std::fs::write(&file, "").expect("write");
        let site = |line, column| Site {
            file: file.clone(),
            line,
            column,
            what: "Verdict::deny".into(),
        };
        let sites = Sites {
            tracked: vec![site(3, 5), site(3, 30), site(9, 9), site(12, 9)],
            untracked: vec![],
            unreachable: vec![],
        };
        let hits: BTreeSet<String> = [
            "3:30 policies/p/src/lib.rs",
            "9:9 p/src/lib.rs",
            // Another crate's file of the same name is not this one.
            "12:9 other/src/lib.rs",
            "forged \u{1b}[2J",
            "3:31 src/lib.rs",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let cov = measure(&[(sites, hits)]);
        let f = &cov.files[&file];
        assert_eq!(f.covered.iter().copied().collect::<Vec<_>>(), [9]);
        assert_eq!(f.not_covered.keys().copied().collect::<Vec<_>>(), [3, 12]);
        assert_eq!(cov.unmatched, 3);
        let json = to_json(&cov);
        let key = file.display().to_string();
        assert_eq!(json["files"][&key]["covered"][0]["start"]["row"], 9);
        assert_eq!(
            json["files"][&key]["not_covered"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(json["covered_lines"], 1);
        assert_eq!(json["not_covered_lines"], 2);
        let text = to_text(&cov);
        assert!(text.contains(":12  Verdict::deny"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn consecutive_rows_merge_into_one_range() {
        let r = ranges([3, 4, 5, 9].into_iter());
        assert_eq!(
            serde_json::Value::Array(r),
            json!([
                {"start": {"row": 3}, "end": {"row": 5}},
                {"start": {"row": 9}, "end": {"row": 9}}
            ])
        );
    }
}
