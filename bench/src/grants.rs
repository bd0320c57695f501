//! The grant curves of `jitgate-bench curves`: revocation lag p99 against
//! the number of active grants, and the memory of `jitgate serve` holding
//! 100,000 of them.
//!
//! Grants are seeded straight into the SQLite store's `grants` table, many
//! to a transaction: through `Store::create_grant` each grant is its own
//! fsynced transaction (≈1 ms here), so 1,000,000 would take a quarter of
//! an hour before the measurement starts. The rows are what `create_grant`
//! writes (the same columns, the grant's JSON document); a grant read back
//! through the store must equal the one seeded, and every seeded grant due
//! must end exactly once, so a schema change the seeding misses fails the
//! bench instead of skewing it. Seeded grants have no creation record in
//! the audit chain (nothing here verifies the chain).

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::grant::{Grant, GrantState};
use jitgate::service::{Service, ServiceConfig, now_millis};
use jitgate::store::sqlite::SqliteStore;
use jitgate::store::{GrantFilter, Store};
use jitgate::{Engine, EngineConfig};

/// Grants per seeding transaction.
const BATCH: usize = 50_000;

/// An active file-recovery grant `i`, issued `now`, ending at `expires_at`
/// (ms), as `revocation` builds them.
fn grant(i: usize, now: i64, expires_at: i64, template: &jitgate::Request) -> Grant {
    let mut request = template.clone();
    request.id = format!("curve-{i}");
    Grant {
        id: format!("g-curve-{i:07}"),
        requested_by: "bench".into(),
        state: GrantState::Active,
        outcome: jitgate::Outcome::Allow,
        decision: serde_json::json!({}),
        ttl: ((expires_at - now) / 1000).max(1) as u32,
        revoke_on_ticket_close: true,
        created_at: now,
        issued_at: Some(now),
        expires_at: Some(expires_at),
        ..Grant::of(request)
    }
}

/// Write grants `range` into the store at `path` (already migrated), with
/// `expiry(i)` as grant i's end, `BATCH` to a transaction.
fn seed(path: &Path, range: std::ops::Range<usize>, expiry: impl Fn(usize) -> i64) -> Result<()> {
    let template = jitgate_tests::request(&jitgate_tests::file_recovery_json());
    let now = now_millis();
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let first = range.start;
    let mut i = range.start;
    while i < range.end {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO grants (id, request_id, subject, ticket_id, state, expires_at, lapses_at, revoke_on_ticket_close, created_at, doc, requested_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for j in i..(i + BATCH).min(range.end) {
                let g = grant(j, now, expiry(j), &template);
                insert.execute(rusqlite::params![
                    g.id,
                    g.request.id,
                    g.request.subject.id,
                    g.ticket_id(),
                    g.state.as_str(),
                    g.expires_at,
                    g.lapses_at,
                    g.revoke_on_ticket_close,
                    g.created_at,
                    serde_json::to_string(&g)?,
                    g.requested_by
                ])?;
            }
        }
        tx.commit()?;
        i = (i + BATCH).min(range.end);
    }
    drop(conn);
    // Read one back through the store: the seeding wrote what it writes.
    let store = SqliteStore::open(path)?;
    let want = grant(first, now, expiry(first), &template);
    let got = store
        .grant(&want.id)?
        .context("a seeded grant is not found")?;
    if got != want {
        bail!("a seeded grant reads back changed:\n{want:?}\n{got:?}");
    }
    Ok(())
}

/// One point of the revocation curve.
pub struct LagPoint {
    pub active: usize,
    pub due: usize,
    pub seed_s: f64,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
    pub sweep_s: f64,
}

fn pct(v: &[i64], q: f64) -> i64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `active` grants in a new SQLite store, a tenth of them expiring within
/// one second (the rest in a day), ended by the real scheduler; the lag
/// of each due grant from `expires-at` to expired with its event queued.
pub fn revocation_lag(tmp: &Path, active: usize) -> Result<LagPoint> {
    let due = active / 10;
    let path = tmp.join(format!("lag-{active}.db"));
    drop(SqliteStore::open(&path)?);
    let t = Instant::now();
    let day = now_millis() + 86_400_000;
    seed(&path, due..active, |_| day)?;
    // The due grants last, their second set from how fast the others went
    // (plus 5 s), so none is due before the scheduler starts.
    let per_grant_ms = t.elapsed().as_secs_f64() * 1000.0 / (active - due).max(1) as f64;
    let first_expiry = now_millis() + 5_000 + (per_grant_ms * due as f64 * 2.0) as i64;
    seed(&path, 0..due, |i| {
        first_expiry + (i as i64 * 1000) / due.max(1) as i64
    })?;
    let seed_s = t.elapsed().as_secs_f64();
    let until_first = first_expiry - now_millis();
    if until_first <= 0 {
        bail!(
            "seeding {active} grants overran the first expiry by {} ms",
            -until_first
        );
    }

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let svc = Arc::new(Service::new(
        Engine::new(EngineConfig::default())?,
        store.clone(),
        ServiceConfig::default(),
    ));
    let rt = tokio::runtime::Runtime::new()?;
    let wall = Instant::now();
    let left = active - due;
    rt.block_on(async {
        let sched = tokio::spawn(jitgate::service::scheduler::run(svc.clone()));
        let result = loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let st = store.clone();
            match tokio::task::spawn_blocking(move || st.count_active()).await {
                Ok(Ok(n)) if n as usize <= left => break Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => break Err(anyhow::Error::from(e)),
                Err(e) => break Err(e.into()),
            }
        };
        sched.abort();
        result
    })?;
    let sweep_s = wall.elapsed().as_secs_f64() - until_first as f64 / 1000.0;

    let mut lags = Vec::with_capacity(due);
    let mut before = None;
    loop {
        let page = store.grants(&GrantFilter {
            state: Some(GrantState::Expired),
            limit: 500,
            before: before.clone(),
            ..GrantFilter::default()
        })?;
        let Some(last) = page.last() else { break };
        before = Some((last.created_at, last.id.clone()));
        lags.extend(page.iter().filter_map(|g| g.revocation_lag_ms));
    }
    lags.sort_unstable();
    if lags.len() != due {
        bail!("{} of {due} due grants expired", lags.len());
    }
    let ends = store
        .audit_page(0, usize::MAX / 2)?
        .iter()
        .filter(|r| r.draft.kind == "transition" && r.draft.data["to"] == "expired")
        .count();
    if ends != due {
        bail!("{ends} expiry records for {due} due grants");
    }
    drop(svc);
    drop(store);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(format!("{}-wal", path.display()));
    Ok(LagPoint {
        active,
        due,
        seed_s,
        p50_ms: pct(&lags, 0.5),
        p99_ms: pct(&lags, 0.99),
        max_ms: lags.last().copied().unwrap_or(0),
        sweep_s,
    })
}

/// Memory of one `jitgate serve`.
pub struct ServeMemory {
    pub grants: usize,
    /// After start-up, before any request (KiB).
    pub rss_started_kib: u64,
    /// After listing grants and scraping `/metrics` (KiB).
    pub rss_kib: u64,
    /// Peak resident (KiB).
    pub hwm_kib: u64,
}

/// A `jitgate serve` that is killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` and `VmHWM` of `pid`, KiB.
fn rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{name} of {pid}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// GET `path` as the test admin; the status line.
fn get(addr: &str, path: &str) -> Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t-admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body.lines().next().unwrap_or("").to_string())
}

/// The `jitgate` binary built beside this one.
pub fn jitgate_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("the bench binary's folder")?
        .join("jitgate");
    if !bin.is_file() {
        bail!("{} not found (build -p jitgate too)", bin.display());
    }
    Ok(bin)
}

/// `jitgate serve` (the test suite's configuration: example
/// policies, SQLite) over a store holding `grants` active grants.
pub fn serve_memory(tmp: &Path, grants: usize) -> Result<ServeMemory> {
    let dir = tmp.join(format!("serve-{grants}"));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("jitgate.db");
    drop(SqliteStore::open(&db)?);
    let day = now_millis() + 86_400_000;
    if grants > 0 {
        seed(&db, 0..grants, |_| day)?;
    }
    let config = jitgate_tests::server::write_config_with(&dir, &db.display().to_string(), "");
    let mut child = Command::new(jitgate_bin()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("JITGATE_LOG", "warn")
        .env("JITGATE_WEBHOOK_SECRET", "test-secret-0123456789")
        .env(
            jitgate_tests::tickets::SECRET_ENV,
            jitgate_tests::tickets::SECRET,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().context("serve's stdout")?;
    let serve = Serve(child);
    // Read its output to the end in a thread: a closed pipe would fail
    // serve's next line of output.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .context("serve never said where it listens")?;
    let pid = serve.0.id();
    // Let start-up work (the scheduler's first look at the store) settle.
    std::thread::sleep(Duration::from_secs(2));
    let (rss_started_kib, _) = rss(pid)?;
    for path in ["/v1/grants?state=active", "/metrics", "/v1/grants"] {
        let status = get(&addr, path)?;
        if !status.contains(" 200 ") {
            bail!("GET {path}: {status}");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss_kib, hwm_kib) = rss(pid)?;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ServeMemory {
        grants,
        rss_started_kib,
        rss_kib,
        hwm_kib,
    })
}
