//! `jitgate explore`: generate requests over the domain the policies and
//! their fixtures span, decide each through the engine exactly as
//! `jitgate test` decides a fixture case (validation, selection, sandbox,
//! combination, the fixture file's settings), and check invariants written
//! in YAML ([`properties`]). A violation is shrunk to the smallest request
//! that still shows it and rendered as a fixture file `jitgate test` reads.
//!
//! Deterministic: the same seed, fixtures, properties and modules give the
//! same requests in the same order (with a request budget; a time budget
//! stops wherever the clock says).

pub mod domain;
pub mod properties;
pub mod render;
pub mod shrink;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fixture::{FixtureSet, RunOptions};
use crate::request::Request;
use domain::{Domain, Rng};
use properties::{Checked, Observed};

/// How long to explore.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many requests in all (spread over the sets in turn).
    Requests(u64),
    /// Until this much time has passed.
    Time(Duration),
}

/// How to explore.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the fixtures' policies are found and how they are loaded.
    pub run: RunOptions,
    /// The seed of the request stream.
    pub seed: u64,
    /// How long.
    pub budget: Budget,
    /// Re-checks the shrinker may spend on one counterexample.
    pub shrink_checks: usize,
    /// Threads that decide (the requests and the report do not depend on
    /// it).
    pub threads: usize,
}

/// Why exploring could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExploreError(pub String);

/// One explored set.
#[derive(Debug, Clone)]
pub struct SetSummary {
    /// Its `policies:` entries, as its first fixture file names them.
    pub policies: Vec<String>,
    /// The fixture files that test it.
    pub files: Vec<PathBuf>,
    /// Requests decided on it.
    pub requests: u64,
}

/// The smallest request found that breaks a property.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// Index into [`Report::sets`].
    pub set: usize,
    /// The request, shrunk.
    pub request: Request,
    /// What the set decided for it.
    pub observed: Observed,
    /// Simplifications the shrinker kept.
    pub shrink_steps: usize,
    /// The request as first found, before shrinking.
    pub original: Request,
    /// A fixture file that reproduces the decision.
    pub fixture: String,
}

/// What explore found about one property.
#[derive(Debug, Clone)]
pub struct PropertyReport {
    /// The property's name.
    pub name: String,
    /// `never` or `always`.
    pub kind: &'static str,
    /// Requests the property applied to.
    pub matched: u64,
    /// Of those, the ones that broke it.
    pub violations: u64,
    /// The first violation, shrunk.
    pub counterexample: Option<Counterexample>,
}

impl PropertyReport {
    /// It applied to some request and none broke it.
    pub fn holds(&self) -> bool {
        self.matched > 0 && self.violations == 0
    }
}

/// Everything explore found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed used.
    pub seed: u64,
    /// Requests decided (shrinking not counted).
    pub requests: u64,
    /// Time spent deciding them (shrinking not counted).
    pub elapsed: Duration,
    /// The sets explored.
    pub sets: Vec<SetSummary>,
    /// One per property, in file order.
    pub properties: Vec<PropertyReport>,
}

impl Report {
    /// Every property applied somewhere and held everywhere.
    pub fn holds(&self) -> bool {
        self.properties.iter().all(PropertyReport::holds)
    }

    /// Requests per minute.
    pub fn rate_per_minute(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 * 60.0 / s
        } else {
            0.0
        }
    }
}

/// Whether the property speaks of `set` at all: a `policy:` claim only of
/// sets that load that policy.
fn speaks_of(p: &Checked, set: &FixtureSet) -> bool {
    let loads = |name: &String| set.engine.policies().any(|m| m.name == *name);
    p.claim.policy.as_ref().is_none_or(loads)
        && p.claim
            .sets_with
            .as_ref()
            .is_none_or(|names| names.values().iter().all(loads))
}

/// Names in the properties that no explored set knows: a typo would make
/// a property silently true.
fn check_names(props: &[Checked], sets: &[FixtureSet]) -> Result<(), ExploreError> {
    let tasks: std::collections::BTreeSet<&str> = sets
        .iter()
        .flat_map(|s| s.engine.known_tasks().iter().map(String::as_str))
        .collect();
    let policies: std::collections::BTreeSet<String> = sets
        .iter()
        .flat_map(|s| s.engine.policies().map(|m| m.name.clone()))
        .collect();
    for p in props {
        let named = p.claim.policy.iter().map(|n| ("policy", n)).chain(
            p.claim
                .sets_with
                .iter()
                .flat_map(|s| s.values())
                .map(|n| ("sets-with", n)),
        );
        for (field, name) in named {
            if !policies.contains(name) {
                return Err(ExploreError(format!(
                    "{}.{field}: `{}` is not a policy of any explored set (loaded: {})",
                    p.path,
                    crate::text::terminal_safe(name),
                    policies.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for (field, c) in [
            ("when", Some(&p.claim.when)),
            ("unless", p.claim.unless.as_ref()),
        ] {
            for t in c
                .iter()
                .flat_map(|c| c.task.iter())
                .flat_map(|t| t.values())
            {
                if !tasks.contains(t.as_str()) {
                    return Err(ExploreError(format!(
                        "{}.{field}.task: `{}` is not a task any explored set declares (declared: {})",
                        p.path,
                        crate::text::terminal_safe(t),
                        tasks.iter().copied().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Requests generated, then decided in parallel, at a time.
const BATCH: u64 = 512;

/// Decide each `(set, request)` of `batch` on up to `threads` threads.
fn decide_all(sets: &[FixtureSet], batch: &[(usize, Request)], threads: usize) -> Vec<Observed> {
    let decide = |chunk: &[(usize, Request)]| -> Vec<Observed> {
        chunk
            .iter()
            .map(|(s, r)| Observed::of(&sets[*s].engine.decide(r)))
            .collect()
    };
    if threads == 1 || batch.len() < 2 {
        return decide(batch);
    }
    let size = batch.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = batch
            .chunks(size)
            .map(|chunk| scope.spawn(move || decide(chunk)))
            .collect();
        handles
            .into_iter()
            // A panic in a thread (deciding returns errors, it does not
            // panic) is this thread's panic: results never misalign.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Explore the policy sets the fixtures under `paths` test, checking
/// `props` on every request.
pub fn explore(
    paths: &[PathBuf],
    props: &[Checked],
    opts: &Options,
) -> Result<Report, ExploreError> {
    let loaded = crate::fixture::load_sets(paths, &opts.run).map_err(ExploreError)?;
    check_names(props, &loaded.sets)?;
    let domain = Domain::new(&loaded, props);
    let sets = &loaded.sets;
    let tasks: Vec<Vec<String>> = sets
        .iter()
        .map(|s| s.engine.known_tasks().iter().cloned().collect())
        .collect();
    let speaks: Vec<Vec<bool>> = sets
        .iter()
        .map(|s| props.iter().map(|p| speaks_of(p, s)).collect())
        .collect();
    let mut reports: Vec<PropertyReport> = props
        .iter()
        .map(|p| PropertyReport {
            name: p.name.clone(),
            kind: p.kind(),
            matched: 0,
            violations: 0,
            counterexample: None,
        })
        .collect();
    let mut firsts: Vec<Option<(usize, Request)>> = vec![None; props.len()];
    let mut per_set = vec![0u64; sets.len()];
    let mut rng = Rng::new(opts.seed);
    let threads = opts.threads.max(1);
    let started = Instant::now();
    let mut n: u64 = 0;
    loop {
        let want = match opts.budget {
            Budget::Requests(max) => max.saturating_sub(n).min(BATCH),
            Budget::Time(d) if started.elapsed() >= d => 0,
            Budget::Time(_) => BATCH,
        };
        if want == 0 {
            break;
        }
        // Generated in order on one stream (the seed fixes the requests),
        // decided on every thread, checked in order: the report is the
        // same whatever the thread count.
        let batch: Vec<(usize, Request)> = (0..want)
            .map(|k| {
                let s = ((n + k) % sets.len() as u64) as usize;
                (s, domain.generate(&tasks[s], &mut rng))
            })
            .collect();
        let decided = decide_all(sets, &batch, threads);
        for ((s, request), observed) in batch.into_iter().zip(decided) {
            for (i, p) in props.iter().enumerate() {
                if !speaks[s][i] {
                    continue;
                }
                if let Some(broken) = p.violated_by(&request, &observed) {
                    reports[i].matched += 1;
                    if broken {
                        reports[i].violations += 1;
                        if firsts[i].is_none() {
                            firsts[i] = Some((s, request.clone()));
                        }
                    }
                }
            }
            per_set[s] += 1;
        }
        n += want;
    }
    let elapsed = started.elapsed();
    for (i, first) in firsts.into_iter().enumerate() {
        let Some((s, original)) = first else { continue };
        let set = &sets[s];
        let p = &props[i];
        let mut violates = |r: &Request| {
            let o = Observed::of(&set.engine.decide(r));
            p.violated_by(r, &o) == Some(true)
        };
        let (request, shrink_steps) = shrink::shrink(
            &original,
            set.default.as_ref(),
            &mut violates,
            opts.shrink_checks,
        );
        let observed = Observed::of(&set.engine.decide(&request));
        let case = format!("explore: {} ({})", p.name, p.kind());
        let fixture = render::fixture_yaml(&set.entries, &set.settings, &case, &request, &observed)
            .map_err(|e| ExploreError(format!("rendering the counterexample: {e}")))?;
        reports[i].counterexample = Some(Counterexample {
            set: s,
            request,
            observed,
            shrink_steps,
            original,
            fixture,
        });
    }
    Ok(Report {
        seed: opts.seed,
        requests: n,
        elapsed,
        sets: sets
            .iter()
            .zip(per_set)
            .map(|(s, requests)| SetSummary {
                policies: s.entries.clone(),
                files: s.files.clone(),
                requests,
            })
            .collect(),
        properties: reports,
    })
}
