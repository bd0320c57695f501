//! `jitgate-bench curves [--quick]`: how costs grow (issue 17, item 4).
//!
//! - decision time with 10, 100 and 500 policies loaded, all but one for
//!   *other* tasks (the engines are timed interleaved, so the ratios
//!   compare the policy counts, not the machine's moods);
//! - start-up with 50 and 500 modules, cold (empty compile cache) and
//!   cached (a new process);
//! - store bytes per grant with its audit records (SQLite, grants made by
//!   the real service);
//! - `audit verify` records/s over a chain of 1,000,000 records;
//! - revocation lag p99 with 10,000, 100,000 and 1,000,000 active grants,
//!   a tenth of them due in the same second (`grants.rs`);
//! - the memory of `jitgate serve` with 100,000 active grants (and none);
//! - a plot of decision time, start-up and revocation lag into
//!   `docs/perf/curves.svg`.
//!
//! `--quick` takes fewer samples, a 100,000-record chain and no
//! 1,000,000-grant point.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use jitgate::request::{Ticket, TicketState};
use jitgate::service::{Principal, Role, Service, ServiceConfig};
use jitgate::store::Store;
use jitgate::store::sqlite::SqliteStore;
use jitgate::{Engine, EngineConfig, Outcome, Request};

use crate::grants::{self, LagPoint, ServeMemory};
use crate::startup;

/// Policy counts of the decision curve.
const POLICIES: [usize; 3] = [10, 100, 500];
/// Module counts of the start-up curve.
const MODULES: [usize; 2] = [50, 500];
/// Active grants `serve` holds for its memory figure.
const SERVE_GRANTS: usize = 100_000;

/// Sizes of one run.
struct Sizes {
    samples: usize,
    grants: usize,
    records: usize,
    /// Active grants of the revocation curve.
    active: &'static [usize],
}

/// Run every curve; tables on stdout, the plot into `plot`.
pub fn run(module: &Path, quick: bool, plot: &Path) -> Result<()> {
    let sizes = if quick {
        Sizes {
            samples: 2_000,
            grants: 1_000,
            records: 100_000,
            active: &[10_000, 100_000],
        }
    } else {
        Sizes {
            samples: 20_000,
            grants: 10_000,
            records: 1_000_000,
            active: &[10_000, 100_000, 1_000_000],
        }
    };
    println!("\n### Load while measuring\n");
    println!("- before: `{}`", uptime());

    let tmp = tempfile::tempdir()?;
    let most = *MODULES.iter().chain(&POLICIES).max().unwrap_or(&500);
    let all = tmp.path().join("modules");
    startup::copies(module, most, &all)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&all)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();

    // Start-up: the first n copies, each count in a folder of its own.
    let mut starts = Vec::new();
    for n in MODULES {
        let dir = tmp.path().join(format!("m{n}"));
        std::fs::create_dir_all(&dir)?;
        for f in files.iter().take(n) {
            std::fs::copy(f, dir.join(f.file_name().context("a file name")?))?;
        }
        eprintln!("start-up with {n} modules…");
        starts.push(startup::measure(
            &dir,
            &tmp.path().join(format!("cache{n}")),
        )?);
    }

    // Decisions: the engines load from the 500-module cache just filled.
    let cache = tmp
        .path()
        .join(format!("cache{}", MODULES[MODULES.len() - 1]));
    eprintln!("decision time with {POLICIES:?} policies loaded…");
    let decisions = decision_curve(&files, &cache, sizes.samples)?;

    eprintln!("store bytes per grant ({} grants)…", sizes.grants);
    let store = store_bytes(tmp.path(), sizes.grants)?;
    eprintln!("audit verify over {} records…", sizes.records);
    let verify = verify_rate(tmp.path(), &store.templates, sizes.records)?;
    let mut lags = Vec::new();
    for &n in sizes.active {
        eprintln!(
            "revocation lag with {n} active grants, {} due in one second…",
            n / 10
        );
        lags.push(grants::revocation_lag(tmp.path(), n)?);
    }
    let mut memory = Vec::new();
    for n in [0, SERVE_GRANTS] {
        eprintln!("memory of serve with {n} active grants…");
        memory.push(grants::serve_memory(tmp.path(), n)?);
    }
    println!("- after: `{}`", uptime());

    print_tables(&decisions, &starts, &store, &verify, sizes.samples);
    print_grant_tables(&lags, &memory);
    plot_svg(plot, &decisions, &starts, &lags)?;
    println!("\nPlot: `{}`", plot.display());
    Ok(())
}

fn uptime() -> String {
    std::process::Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("uptime: {e}"))
}

/// The bench policy's rule allows this, for task `task`.
fn request(task: &str) -> Result<Request> {
    let now = jitgate::service::now_millis() as u64 / 1000;
    Ok(Request::builder(task)
        .id("curve-1")
        .subject("alice")
        .roles(["helpdesk"])
        .mfa_at(now)
        .resource("fileserver-01")
        .entitlement("operator")
        .justification("restore the deleted finance share for the incident")
        .ttl(600)
        .ticket(Ticket {
            id: "T-1".into(),
            state: TicketState::Open,
            priority: 3,
            assignee: Some("alice".into()),
            opened_at: now - 600,
        })
        .build()?)
}

/// One point of the decision curve.
struct DecisionPoint {
    policies: usize,
    median_ns: f64,
    p99_ns: f64,
}

fn decision_curve(files: &[PathBuf], cache: &Path, n: usize) -> Result<Vec<DecisionPoint>> {
    let task = crate::startup::copy_name(1);
    let req = request(&task)?;
    let mut engines = Vec::new();
    for k in POLICIES {
        let mut e = Engine::new(EngineConfig {
            cache_dir: Some(cache.to_path_buf()),
            ..EngineConfig::default()
        })?;
        for f in files.iter().take(k) {
            e.load_file(f)?;
        }
        // The policy under test is the only one that applies.
        let d = e.decide(&req)?;
        if d.outcome != Outcome::Allow || d.policies.len() != 1 {
            bail!(
                "{k} policies: expected one policy to allow, got {:?} from {} policies",
                d.outcome,
                d.policies.len()
            );
        }
        engines.push((k, e));
    }
    let req = &req;
    let ways: Vec<(&'static str, usize, crate::Way<'_>)> = engines
        .iter()
        .map(|(_, e)| {
            let f: crate::Way<'_> = Box::new(move |_| crate::jitgate_answer(e, req));
            ("jitgate", 1, f)
        })
        .collect();
    let rows = crate::time_interleaved(ways, 1, n)?;
    Ok(engines
        .iter()
        .zip(rows)
        .map(|((k, _), r)| DecisionPoint {
            policies: *k,
            median_ns: r.median,
            p99_ns: r.p99,
        })
        .collect())
}

/// What one grant costs the store.
struct StoreFigures {
    grants: usize,
    records: usize,
    bytes: u64,
    empty_bytes: u64,
    submit_s: f64,
    /// The audit records the grants produced, to replay into a long chain.
    templates: Vec<jitgate::audit::AuditDraft>,
}

/// Bytes of a SQLite store on disk (the file and its write-ahead log).
fn db_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| {
            std::fs::metadata(format!("{}{s}", path.display()))
                .ok()
                .map(|m| m.len())
        })
        .sum()
}

/// `n` file-recovery grants submitted through the service to a SQLite file.
fn store_bytes(tmp: &Path, n: usize) -> Result<StoreFigures> {
    let empty = tmp.join("empty.db");
    drop(SqliteStore::open(&empty)?);
    let empty_bytes = db_bytes(&empty);

    let engine = Engine::builder()
        .policies(jitgate_tests::server::clock_free_policies(tmp))
        .build()
        .context("example policies (./dev policies; JITGATE_POLICY_DIR)")?;
    let path = tmp.join("grants.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let svc = Service::new(engine, store.clone(), ServiceConfig::default())
        .with_trusted_context(["pipe".to_string()].into());
    let who = Principal::new("pipe", [Role::Pipeline]);
    let now = jitgate::service::now_millis() as u64 / 1000;
    let t = Instant::now();
    for i in 0..n {
        let req = Request::builder("file-recovery")
            .id(format!("curve-{i}"))
            .subject("alice")
            .roles(["helpdesk", "it-admin"])
            .groups(["oncall"])
            .mfa_at(now)
            .resource("fileserver-01")
            .entitlement("operator")
            .justification("restore the deleted finance share for the incident")
            .ttl(600)
            .ticket(Ticket {
                id: format!("T-{i}"),
                state: TicketState::Open,
                priority: 3,
                assignee: Some("alice".into()),
                opened_at: now - 600,
            })
            .build()?;
        let (g, _) = svc.submit(&who, req)?;
        if g.state.as_str() != "active" {
            bail!("grant {i} is {}, not active", g.state.as_str());
        }
    }
    let submit_s = t.elapsed().as_secs_f64();
    let templates: Vec<_> = store
        .audit_page(0, usize::MAX / 2)?
        .into_iter()
        .map(|r| r.draft)
        .collect();
    drop(svc);
    drop(store);
    Ok(StoreFigures {
        grants: n,
        records: templates.len(),
        bytes: db_bytes(&path),
        empty_bytes,
        submit_s,
        templates,
    })
}

/// `audit verify` over a long chain.
struct VerifyFigures {
    records: u64,
    append_s: f64,
    verify_s: f64,
    bytes: u64,
}

/// Append `n` records (the grants' own, round robin) to a new SQLite store,
/// then walk the chain as `jitgate audit verify --store` does.
fn verify_rate(
    tmp: &Path,
    templates: &[jitgate::audit::AuditDraft],
    n: usize,
) -> Result<VerifyFigures> {
    if templates.is_empty() {
        bail!("no audit records to replay");
    }
    let path = tmp.join("chain.db");
    let store = SqliteStore::open(&path)?;
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 1000).min(n))
            .map(|j| templates[j % templates.len()].clone())
            .collect();
        i += batch.len();
        store.append_audit(batch)?;
    }
    let append_s = t.elapsed().as_secs_f64();
    drop(store);
    let store = SqliteStore::open(&path)?;
    let t = Instant::now();
    let report = jitgate::audit::verify_store(&store, jitgate::audit::Anchors::new(), &mut |_| {})?;
    let verify_s = t.elapsed().as_secs_f64();
    if report.bad_count != 0 || report.checked != n as u64 {
        bail!(
            "verify checked {} of {n}, {} bad",
            report.checked,
            report.bad_count
        );
    }
    drop(store);
    Ok(VerifyFigures {
        records: report.checked,
        append_s,
        verify_s,
        bytes: db_bytes(&path),
    })
}

fn print_tables(
    d: &[DecisionPoint],
    s: &[startup::Startup],
    st: &StoreFigures,
    v: &VerifyFigures,
    samples: usize,
) {
    let base = d.first().map(|p| p.median_ns).unwrap_or(1.0).max(1e-9);
    println!(
        "\n### Decision time vs policies loaded (one applies, the rest are for other tasks; {samples} samples each, interleaved)\n"
    );
    println!("| policies loaded | median µs | p99 µs | × 10 policies (median) |");
    println!("|---:|---:|---:|---:|");
    for p in d {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} |",
            p.policies,
            p.median_ns / 1e3,
            p.p99_ns / 1e3,
            p.median_ns / base
        );
    }
    println!("\n### Start-up vs modules\n");
    println!(
        "| modules | cold ms (compile all) | cached ms (new process) | cached ms per module | RSS MiB after cold | RSS MiB after cached |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for x in s {
        println!(
            "| {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.1} |",
            x.modules,
            x.cold_ms,
            x.warm_ms,
            x.warm_ms / x.modules.max(1) as f64,
            x.cold_rss_kib.1 as f64 / 1024.0,
            x.warm_rss_kib.1 / 1024.0
        );
    }
    println!("\n### Store and audit chain (SQLite)\n");
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| grants submitted through the service (active, file-recovery) | {} ({:.0}/s, one thread) |",
        st.grants,
        st.grants as f64 / st.submit_s.max(1e-9)
    );
    println!(
        "| audit records per grant | {:.2} |",
        st.records as f64 / st.grants.max(1) as f64
    );
    println!(
        "| store bytes per grant, with its audit records | {:.0} (file {} bytes, empty store {} bytes) |",
        st.bytes.saturating_sub(st.empty_bytes) as f64 / st.grants.max(1) as f64,
        st.bytes,
        st.empty_bytes
    );
    println!(
        "| chain of those records replayed | {} records, {:.0} MiB, appended at {:.0}/s (batches of 1,000) |",
        v.records,
        v.bytes as f64 / (1024.0 * 1024.0),
        v.records as f64 / v.append_s.max(1e-9)
    );
    println!(
        "| `audit verify` over it | {:.1} s, **{:.0} records/s** |",
        v.verify_s,
        v.records as f64 / v.verify_s.max(1e-9)
    );
}

fn print_grant_tables(lags: &[LagPoint], memory: &[ServeMemory]) {
    println!(
        "\n### Revocation lag vs active grants (SQLite, a tenth due in the same second, the rest in a day)\n"
    );
    println!(
        "| active grants | due in one second | p50 lag ms | p99 lag ms | max lag ms | sweep s | seeding s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for p in lags {
        println!(
            "| {} | {} | {} | **{}** | {} | {:.1} | {:.1} |",
            p.active, p.due, p.p50_ms, p.p99_ms, p.max_ms, p.sweep_s, p.seed_s
        );
    }
    println!(
        "\n### Memory of `jitgate serve` (this build of `jitgate`, SQLite, example policies; grants seeded into the store before start)\n"
    );
    println!(
        "| active grants | RSS MiB after start | RSS MiB after listing grants + /metrics | peak RSS (VmHWM) MiB |"
    );
    println!("|---:|---:|---:|---:|");
    for m in memory {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            m.grants,
            m.rss_started_kib as f64 / 1024.0,
            m.rss_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0
        );
    }
}

/// One line of a panel: label, colour, the y of a point.
type Series<T> = (&'static str, plotters::style::RGBColor, fn(&T) -> f64);

fn plot_svg(
    path: &Path,
    d: &[DecisionPoint],
    s: &[startup::Startup],
    lags: &[LagPoint],
) -> Result<()> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (1440, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 3));

    // Left: decision time vs policies loaded.
    let ymax = d.iter().map(|p| p.p99_ns / 1e3).fold(1.0, f64::max) * 1.2;
    let mut c = ChartBuilder::on(&panels[0])
        .caption("Decision time vs policies loaded", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((5f64..1000f64).log_scale(), 0f64..ymax)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("policies loaded (1 applies)")
        .y_desc("µs per decision")
        .draw()
        .map_err(|e| err(&e))?;
    let series: [Series<DecisionPoint>; 2] = [
        ("median", BLUE, |p| p.median_ns / 1e3),
        ("p99", RED, |p| p.p99_ns / 1e3),
    ];
    for (label, color, f) in series {
        let pts: Vec<(f64, f64)> = d.iter().map(|p| (p.policies as f64, f(p))).collect();
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;

    // Right: start-up vs modules, log-log.
    let ymax = s.iter().map(|x| x.cold_ms).fold(10.0, f64::max) * 2.0;
    let mut c = ChartBuilder::on(&panels[1])
        .caption("Start-up vs modules", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((20f64..1000f64).log_scale(), (1f64..ymax).log_scale())
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("policy modules")
        .y_desc("ms (log)")
        .draw()
        .map_err(|e| err(&e))?;
    let series: [Series<startup::Startup>; 2] = [
        ("cold (compile)", RED, |x| x.cold_ms),
        ("cached (new process)", BLUE, |x| x.warm_ms),
    ];
    for (label, color, f) in series {
        let pts: Vec<(f64, f64)> = s.iter().map(|x| (x.modules as f64, f(x))).collect();
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;

    // Right: revocation lag vs active grants, log-log (the lags span
    // three orders of magnitude).
    let ymax = lags.iter().map(|p| p.max_ms as f64).fold(100.0, f64::max) * 2.0;
    let mut c = ChartBuilder::on(&panels[2])
        .caption("Revocation lag vs active grants", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(
            (5_000f64..2_000_000f64).log_scale(),
            (1f64..ymax).log_scale(),
        )
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("active grants (a tenth due in one second)")
        .y_desc("ms from expires-at to expired (log)")
        .draw()
        .map_err(|e| err(&e))?;
    let series: [Series<LagPoint>; 2] = [
        // At least 1 ms: a log axis has no 0.
        ("p50", BLUE, |p| p.p50_ms.max(1) as f64),
        ("p99", RED, |p| p.p99_ms.max(1) as f64),
    ];
    for (label, color, f) in series {
        let pts: Vec<(f64, f64)> = lags.iter().map(|p| (p.active as f64, f(p))).collect();
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
