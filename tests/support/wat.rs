//! Hostile guests written in WAT (`tests/guests/wat/`), made into
//! `policy-module` components at test time with wit-component, against the
//! previous contract (`jitgate:policy@0.1.0`) unless turned to `@0.2.0`.
//! See that folder's README for the layout.

use std::path::{Path, PathBuf};

/// How one WAT guest is assembled.
#[derive(Debug, Clone)]
pub struct WatGuest<'a> {
    /// `tests/guests/wat/<source>.wat`.
    pub source: &'a str,
    /// The policy name its `info` declares.
    pub name: &'a str,
    /// The one task it declares.
    pub task: &'a str,
    /// Strings in latin1+utf16 instead of utf8.
    pub latin1_utf16: bool,
    /// Further `{KEY}` → value substitutions.
    pub vars: &'a [(&'a str, &'a str)],
}

impl<'a> WatGuest<'a> {
    /// `source` named after itself, task `hostile-<source>`, utf8.
    pub fn new(source: &'a str) -> Self {
        WatGuest {
            source,
            name: source,
            task: "",
            latin1_utf16: false,
            vars: &[],
        }
    }

    /// The component's bytes.
    pub fn component(&self) -> Vec<u8> {
        let dir = crate::root().join("tests/guests/wat");
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_else(|e| panic!("tests/guests/wat/{f}: {e}"))
        };
        let body = read(&format!("{}.wat", self.source));
        let default_task = format!("hostile-{}", self.name);
        let task = if self.task.is_empty() {
            default_task.as_str()
        } else {
            self.task
        };
        let mut text = String::from("(module\n");
        text.push_str(&read("prelude.wat"));
        if !body.contains(";; own-info") {
            text.push_str(&read("info.wat"));
        }
        // `;; @repeat N` repeats the next line N times (straight-line code).
        let mut lines = body.lines();
        while let Some(line) = lines.next() {
            if let Some(n) = line.trim().strip_prefix(";; @repeat ") {
                let n: usize = n.parse().expect("@repeat count");
                let next = lines.next().expect("a line to repeat");
                for _ in 0..n {
                    text.push_str(next);
                    text.push('\n');
                }
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(")\n");
        let name_len = self.name.len().to_string();
        let task_len = task.len().to_string();
        let mut subs: Vec<(&str, &str)> = vec![
            ("{NAME_LEN}", &name_len),
            ("{TASK_LEN}", &task_len),
            ("{NAME}", self.name),
            ("{TASK}", task),
            ("{FILL}", "0x41"),
            ("{REVOKE}", ""),
        ];
        subs.splice(0..0, self.vars.iter().copied());
        for (k, v) in subs {
            text = text.replace(k, v);
        }
        let mut module = wat_to_wasm(&text, self.source);
        // The guests are written against the previous contract (0.1.0, its
        // WIT kept in tests/guests/wit-0.1.0): they show such modules keep
        // loading. One whose names were turned to `@0.2.0` (a `vars`
        // substitution) is built against the current `wit/`.
        let wit = if text.contains("jitgate:policy/policy@0.2.") {
            crate::root().join("wit")
        } else {
            crate::root().join("tests/guests/wit-0.1.0")
        };
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve.push_dir(&wit).expect("the contract's WIT parses");
        let world = resolve
            .select_world(&[pkg], Some("policy-module"))
            .expect("world policy-module");
        let encoding = if self.latin1_utf16 {
            wit_component::StringEncoding::CompactUTF16
        } else {
            wit_component::StringEncoding::UTF8
        };
        wit_component::embed_component_metadata(&mut module, &resolve, world, encoding, false)
            .expect("embed metadata");
        let mut encoder = wit_component::ComponentEncoder::default();
        encoder
            .validate(true)
            .module(&module)
            .and_then(|e| e.encode())
            .unwrap_or_else(|e| panic!("{}: not a component: {e:#}", self.source))
    }

    /// Write the component to `dir/<file>.wasm`.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(format!("{file}.wasm"));
        std::fs::write(&path, self.component()).expect("write guest");
        path
    }
}

fn wat_to_wasm(text: &str, what: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{what}.wat: {e}"))
}

/// A WAT guest named after its source, written to a fresh file under the
/// target folder; returns its path.
pub fn wat_guest(source: &str) -> PathBuf {
    let dir = crate::target_dir().join("guests-wat");
    std::fs::create_dir_all(&dir).expect("guests-wat dir");
    WatGuest::new(source).write(&dir, source)
}
