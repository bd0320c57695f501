//! `/metrics` read by a real exposition-format parser: the Prometheus
//! organisation's Python client's OpenMetrics parser (strict: `# EOF`,
//! `# TYPE` before samples, sample names of the family's type, histogram
//! buckets in order ending at `+Inf`). `./dev test` installs it into the
//! same venv as the SCIM server (`scim-venv/`, see [`crate::scim`]).

use std::io::Write;
use std::process::{Command, Stdio};

/// One sample as the parser read it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The family's name (counters without `_total`).
    pub family: String,
    /// `counter`, `gauge`, `histogram`, …
    pub kind: String,
    /// The sample's own name (`…_total`, `…_bucket`, …).
    pub name: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parse `text` as OpenMetrics, or panic with the parser's complaint.
pub fn parse_openmetrics(text: &str) -> Vec<Sample> {
    let python = std::env::var_os("JITGATE_METRICS_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::target_dir().join("scim-venv/bin/python"));
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `./dev scim-server`, which installs the parser)",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "/metrics is not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser output");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    parsed
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| Sample {
            family: text(v, "family"),
            kind: text(v, "type"),
            name: text(v, "name"),
            labels: v["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, l)| (k.clone(), l.as_str().unwrap_or_default().to_string()))
                .collect(),
            value: v["value"].as_f64().unwrap_or(f64::NAN),
        })
        .collect()
}

/// The value of the sample `name` with exactly `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
        })
        .map(|s| s.value)
}
