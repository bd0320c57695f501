//! Replicas (issue 17, item 2): audited decisions per second of three
//! `jitgate serve` replicas sharing one PostgreSQL store, divided by one
//! replica's, at 8 and 32 clients.
//!
//! Three release `serve` processes are started once on a fresh database;
//! a "1 replica" run sends every `POST /v1/decisions` (a dry run: one audit
//! record each, durable before the answer) to the first, a "3 replicas" run
//! round-robin to all three. Runs are time-boxed and alternated (1 then 3,
//! then 3 then 1 in the next round) so that both see the same stretch of
//! this noisy machine; the table gives medians.
//!
//! Two modes:
//! - **shared**: the replicas, PostgreSQL and the load generator share
//!   this machine's cores, as they do in `tests/benches/decisions.rs`. On 2
//!   cores extra replicas add processes, not CPU: this mode can only show
//!   that the shared chain does not make replicas *slower*.
//! - **quota**: each replica in a cgroup of its own capped at `--quota`
//!   percent of one core (cgroup v1 `cpu.cfs_quota_us` or v2 `cpu.max`),
//!   PostgreSQL and the load generator outside the caps. Each replica then
//!   brings its own CPU, as a replica on its own machine does, and the ratio
//!   measures whether the design lets that CPU turn into decisions (the
//!   question of item 2) rather than how many cores this VM has. Needs
//!   root; skipped with a note otherwise.
//!
//! Each row also gives the replicas' CPU per decision (utime + stime of the
//! `serve` processes from `/proc`, all three summed), so a ratio can be told
//! apart from a change in the work per decision.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jitgate_tests::http::post;
use jitgate_tests::server::{Backend, Server, TestStore, body, write_config_with};

/// Replicas in the "many" runs.
const MANY: usize = 3;
/// Client counts the issue names.
const CLIENTS: [usize; 2] = [8, 32];

/// One measured run.
#[derive(Clone, Copy)]
struct Run {
    per_sec: f64,
    failed: usize,
    cpu_us: f64,
    pg_cpu_us: f64,
    commits: f64,
}

/// A CPU cap for one process, undone (cgroup removed) on drop.
struct Cap {
    dir: PathBuf,
    v2: bool,
}

impl Cap {
    /// A new cgroup for `pid`, uncapped until [`Cap::set`].
    fn new(pid: u32, name: &str) -> Result<Cap> {
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let (base, v2) = if v1.join("cpu.cfs_quota_us").is_file() {
            (v1.to_path_buf(), false)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").is_file() {
            (PathBuf::from("/sys/fs/cgroup"), true)
        } else {
            bail!("no cgroup cpu controller at /sys/fs/cgroup")
        };
        let dir = base.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("create {} (needs root)", dir.display()))?;
        let cap = Cap { dir, v2 };
        std::fs::write(cap.dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("move {pid} into {}", cap.dir.display()))?;
        Ok(cap)
    }

    /// Cap at `percent` of one core, or lift the cap (`None`).
    fn set(&self, percent: Option<u32>) -> Result<()> {
        const PERIOD: u64 = 100_000;
        let quota = percent.map(|p| PERIOD * u64::from(p) / 100);
        let (file, value) = match (self.v2, quota) {
            (false, Some(q)) => ("cpu.cfs_quota_us", q.to_string()),
            (false, None) => ("cpu.cfs_quota_us", "-1".to_string()),
            (true, Some(q)) => ("cpu.max", format!("{q} {PERIOD}")),
            (true, None) => ("cpu.max", format!("max {PERIOD}")),
        };
        std::fs::write(self.dir.join(file), value)
            .with_context(|| format!("write {}/{file}", self.dir.display()))
    }
}

impl Drop for Cap {
    fn drop(&mut self) {
        // Its process is gone by now (servers drop first); an empty cgroup
        // is removed with rmdir.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based
    // utime = 14, stime = 15; after ") " they are at 11 and 12 (0-based).
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every PostgreSQL process on this machine.
fn pg_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_secs)
        .sum()
}

/// Write transactions the PostgreSQL server has started so far: its
/// transaction-id counter, which only a transaction that writes advances
/// (and this query, by one). `pg_stat_database.xact_commit` would count
/// reads too, and backends report it up to seconds late.
fn pg_commits() -> f64 {
    jitgate_tests::pg::query(&jitgate_tests::pg::admin_url(), "select txid_current()")
        .ok()
        .and_then(|rows| rows.first()?.first()?.as_ref()?.parse().ok())
        .unwrap_or(0.0)
}

/// Send decisions from `clients` threads to `addrs` for `secs`.
fn load(addrs: &[SocketAddr], pids: &[u32], clients: usize, secs: f64) -> Run {
    let payload = body("bench", "alice", "file-recovery", 600);
    let (ok, failed, next) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let stop = AtomicBool::new(false);
    let cpu0: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
    let (pg0, commits0) = (pg_cpu_secs(), pg_commits());
    let started = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..clients {
            sc.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let r = post(
                        addrs[i % addrs.len()],
                        "/v1/decisions",
                        Some("t-pipe"),
                        &payload,
                    );
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = pids.iter().map(|p| cpu_secs(*p)).sum::<f64>() - cpu0;
    let (pg, commits) = (pg_cpu_secs() - pg0, pg_commits() - commits0);
    let ok = ok.load(Ordering::Relaxed);
    let per = |x: f64| if ok > 0 { x / ok as f64 } else { 0.0 };
    Run {
        per_sec: ok as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        cpu_us: per(cpu * 1e6),
        pg_cpu_us: per(pg * 1e6),
        commits: per(commits),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Run the table. `secs` per run, `rounds` alternated rounds, `quota` percent
/// of a core per replica in the capped mode.
pub fn run(secs: f64, rounds: usize, quota: u32) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = TestStore::new(Backend::Postgres, dir.path());
    let servers: Vec<Server> = (0..MANY)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d)?;
            Ok(Server::start(&write_config_with(&d, &store.url, "")))
        })
        .collect::<Result<_>>()?;
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    let caps: Result<Vec<Cap>> = pids
        .iter()
        .enumerate()
        .map(|(i, pid)| Cap::new(*pid, &format!("jitgate-bench-{}-{i}", std::process::id())))
        .collect();
    let caps = match caps {
        Ok(c) => Some(c),
        Err(e) => {
            println!("(quota mode skipped: {e:#})\n");
            None
        }
    };
    // Warm up every replica (module cache, connection pool, chainer).
    for _ in 0..3 {
        load(&addrs, &pids, 8, 1.0);
    }

    let mut modes: Vec<(&str, Option<u32>)> = vec![("shared", None)];
    if caps.is_some() {
        modes.push(("quota", Some(quota)));
    }
    // (mode, clients, replicas) → runs.
    let mut runs: Vec<((usize, usize, usize), Vec<Run>)> = Vec::new();
    for round in 0..rounds {
        for (m, (_, cap)) in modes.iter().enumerate() {
            if let Some(caps) = &caps {
                for c in caps {
                    c.set(*cap)?;
                }
            }
            for (ci, clients) in CLIENTS.iter().enumerate() {
                let order = if round % 2 == 0 { [1, MANY] } else { [MANY, 1] };
                for replicas in order {
                    let r = load(&addrs[..replicas], &pids, *clients, secs);
                    eprintln!(
                        "round {round} {} {clients} clients {replicas} replica(s): {:.0}/s",
                        modes[m].0, r.per_sec
                    );
                    let key = (m, ci, replicas);
                    match runs.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push(r),
                        None => runs.push((key, vec![r])),
                    }
                }
            }
        }
    }
    if let Some(caps) = &caps {
        for c in caps {
            c.set(None)?;
        }
    }
    let verified = jitgate_tests::jitgate_audit(&store.url, &["verify"]);

    println!(
        "{rounds} alternated rounds of {secs} s per row, medians; PostgreSQL store; every decision an audited dry run (`POST /v1/decisions`, one connection per request); quota mode: each replica capped at {quota} % of one core, PostgreSQL and the load generator uncapped\n"
    );
    println!(
        "| mode | clients | 1 replica decisions/s | 3 replicas decisions/s | 3 ÷ 1 | replica CPU µs/decision (1 / 3) | PostgreSQL CPU µs/decision (1 / 3) | PostgreSQL write transactions/decision (1 / 3) | failed (1 / 3) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let get = |m: usize, ci: usize, r: usize| -> (Run, usize) {
        let v = runs
            .iter()
            .find(|(k, _)| *k == (m, ci, r))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[]);
        let med = |f: fn(&Run) -> f64| median(v.iter().map(f).collect());
        (
            Run {
                per_sec: med(|r| r.per_sec),
                failed: 0,
                cpu_us: med(|r| r.cpu_us),
                pg_cpu_us: med(|r| r.pg_cpu_us),
                commits: med(|r| r.commits),
            },
            v.iter().map(|r| r.failed).sum(),
        )
    };
    for (m, (mode, _)) in modes.iter().enumerate() {
        for (ci, clients) in CLIENTS.iter().enumerate() {
            let (one, one_failed) = get(m, ci, 1);
            let (many, many_failed) = get(m, ci, MANY);
            let ratio = if one.per_sec > 0.0 {
                many.per_sec / one.per_sec
            } else {
                0.0
            };
            println!(
                "| {mode} | {clients} | {:.0} | {:.0} | **{ratio:.2}** | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {one_failed} / {many_failed} |",
                one.per_sec,
                many.per_sec,
                one.cpu_us,
                many.cpu_us,
                one.pg_cpu_us,
                many.pg_cpu_us,
                one.commits,
                many.commits,
            );
        }
    }
    println!(
        "\n`jitgate audit verify` of the shared store after the runs: {}",
        verified.1.trim()
    );
    if !verified.0 {
        bail!("the shared audit chain did not verify");
    }
    drop(servers);
    drop(caps);
    drop(store);
    Ok(())
}
