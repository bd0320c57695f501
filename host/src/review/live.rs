//! The audit chain followed as it grows, for the pages that show its state
//! and the access review (issue 16: console pages in under 50 ms at 10,000
//! grants; walking 42,000 records takes half a second).
//!
//! Walking the whole chain on every view made each one cost O(records). A
//! [`Live`] walks it once from record 1, keeps the [`Verifier`]'s state and
//! what each record adds to a review ([`Event`]), and on each later view
//! reads, verifies and adds only the records appended since. A review of
//! any window is then the kept events applied in chain order: the same
//! [`Builder`] as [`super::read`], so both give the same report.
//!
//! **What this verifies, and what a full walk adds.** Every record is
//! checked once, when it is read: its hash, and that it follows the record
//! before it. An appended record is checked against the remembered head,
//! so rewriting (and re-hashing) any record already read is found as soon
//! as the next record is appended: that record's `prev-hash` is the
//! rewritten head's, not the remembered one. What an incremental read
//! cannot see is a record edited in place *after* it was read, with the
//! head left alone. So the walk from record 1 is repeated: whenever a view
//! finds the last one older than [`Live::rewalk_after`] (default 10
//! minutes), a background thread walks again and swaps its result in; a
//! view never waits for it. Pages say when the last walk from record 1
//! began. An explicit walk (the evidence page's "walk the whole chain now",
//! `jitgate audit verify`, `GET /v1/audit/verify`) still reads everything.
//!
//! Memory: what a review reads of each record (the strings of requests,
//! approvals and transitions), not the records themselves: ≈ 300 bytes a
//! record (docs/performance.md, "Console pages at 10,000 grants"), at most
//! [`DEFAULT_MAX_BYTES`] unless set otherwise. Past the cap the chain's
//! state is still followed (its cost does not grow with the chain) and the
//! access review walks the chain on each view instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::build::{Builder, Event};
use super::{AccessReview, ReviewError, check_window};
use crate::audit::{self, AuditRecord, Verifier};
use crate::grant::Millis;
use crate::store::{Store, StoreError};

/// Records read per store page.
const PAGE: usize = 1000;

/// The chain's state as a [`Live`] last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// Records checked, faults (the first [`audit::MAX_LISTED`]) and the
    /// head, as a full walk reports them.
    pub report: audit::Report,
    /// When the last walk from record 1 began (Unix ms).
    pub walked_at: Millis,
}

/// Every record after `after`, in chain order.
fn appended(store: &dyn Store, mut after: i64) -> Result<Vec<AuditRecord>, StoreError> {
    let mut out = Vec::new();
    loop {
        let page = store.audit_page(after, PAGE)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// One walk from record 1, continued with every record appended since.
struct Followed {
    verifier: Verifier,
    report: audit::Report,
    /// `None` once they would hold more than the cap: reviews then walk.
    events: Option<Vec<Event>>,
    /// Bytes the events hold (estimated as they are added).
    bytes: usize,
    max_bytes: usize,
    walked_at: Millis,
}

impl Followed {
    fn new(walked_at: Millis, max_bytes: usize) -> Followed {
        Followed {
            verifier: Verifier::default(),
            report: audit::Report::default(),
            events: Some(Vec::new()),
            bytes: 0,
            max_bytes,
            walked_at,
        }
    }

    fn add(&mut self, r: &AuditRecord) {
        let faults = self.verifier.check(r);
        if self.events.is_some()
            && let Some(ev) = Event::of(r, &faults)
        {
            self.bytes += ev.footprint() + std::mem::size_of::<Event>();
            if self.bytes > self.max_bytes {
                // Past the cap the chain is still followed (its state stays
                // cheap); only reviews go back to walking it.
                self.events = None;
            } else if let Some(events) = self.events.as_mut() {
                events.push(ev);
            }
        }
        for f in faults {
            self.report.bad_count += 1;
            if self.report.bad.len() < audit::MAX_LISTED {
                self.report.bad.push(f);
            }
        }
    }

    fn head_seq(&self) -> i64 {
        self.verifier.head().map_or(0, |(seq, _)| seq)
    }

    /// Check and keep `records` (the ones after the last kept, in order).
    fn add_all(&mut self, records: &[AuditRecord]) {
        for r in records {
            self.add(r);
        }
        self.report.checked = self.verifier.checked;
        self.report.head = self.verifier.head();
    }

    /// Read, check and keep every record after the last one read.
    fn catch_up(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        let records = appended(store, self.head_seq())?;
        self.add_all(&records);
        Ok(())
    }

    fn status(&self) -> ChainStatus {
        ChainStatus {
            report: self.report.clone(),
            walked_at: self.walked_at,
        }
    }
}

/// The audit chain of one store, followed (see the module's note).
pub struct Live {
    followed: RwLock<Option<Followed>>,
    max_bytes: usize,
    /// Serialises catching up, so two views do not read the same records.
    reading: Mutex<()>,
    rewalking: Arc<AtomicBool>,
    rewalk_after: Millis,
}

/// What the kept events may hold by default: 256 MiB, about 900,000 audit
/// records at the ≈ 300 bytes a record measured (docs/performance.md §12).
/// Past it, the chain's state is still followed and reviews walk the
/// chain as `jitgate report` does (slower, no memory kept).
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

impl Default for Live {
    fn default() -> Self {
        Live::new(10 * 60 * 1000)
    }
}

impl Live {
    /// A follower that walks from record 1 again when its last such walk is
    /// older than `rewalk_after` ms.
    pub fn new(rewalk_after: Millis) -> Live {
        Live::with_cap(rewalk_after, DEFAULT_MAX_BYTES)
    }

    /// [`Live::new`] keeping at most `max_bytes` of events (see
    /// [`DEFAULT_MAX_BYTES`]).
    pub fn with_cap(rewalk_after: Millis, max_bytes: usize) -> Live {
        Live {
            max_bytes,
            followed: RwLock::new(None),
            reading: Mutex::new(()),
            rewalking: Arc::new(AtomicBool::new(false)),
            rewalk_after,
        }
    }

    /// How old (ms) the last walk from record 1 may be before a view starts
    /// another in the background.
    pub fn rewalk_after(&self) -> Millis {
        self.rewalk_after
    }

    /// Bring the kept state up to the store's head (the first call walks
    /// from record 1); start a background walk when the last is too old.
    fn catch_up(self: &Arc<Self>, store: &Arc<dyn Store>, now: Millis) -> Result<(), StoreError> {
        let _one = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        // Read the new records holding no lock views take: views of what is
        // already kept go on meanwhile (`reading` keeps the head still).
        let after = self
            .followed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Followed::head_seq);
        let walked_at = match after {
            None => {
                let mut fresh = Followed::new(now, self.max_bytes);
                fresh.catch_up(store.as_ref())?;
                let walked_at = fresh.walked_at;
                *self
                    .followed
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(fresh);
                walked_at
            }
            Some(after) => {
                let records = appended(store.as_ref(), after)?;
                let mut kept = self
                    .followed
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                let Some(f) = kept.as_mut() else {
                    return Ok(());
                };
                f.add_all(&records);
                f.walked_at
            }
        };
        let stale = now - walked_at >= self.rewalk_after;
        if stale && !self.rewalking.swap(true, Ordering::AcqRel) {
            let live = Arc::clone(self);
            let store = Arc::clone(store);
            let spawned = std::thread::Builder::new()
                .name("jitgate-chain-walk".into())
                .spawn(move || {
                    if let Err(e) = live.rewalk(&store, now) {
                        tracing::warn!(error = %e, "walking the audit chain from record 1 failed");
                    }
                    live.rewalking.store(false, Ordering::Release);
                });
            if spawned.is_err() {
                self.rewalking.store(false, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Walk the whole chain from record 1 now (an explicit full walk) and
    /// keep the result; its status.
    pub fn rewalk(&self, store: &Arc<dyn Store>, now: Millis) -> Result<ChainStatus, StoreError> {
        let mut fresh = Followed::new(now, self.max_bytes);
        fresh.catch_up(store.as_ref())?;
        // Records appended during the walk are read under the lock, so no
        // view sees the fresh state behind the one it replaces.
        let _one = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        fresh.catch_up(store.as_ref())?;
        let status = fresh.status();
        *self
            .followed
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(fresh);
        Ok(status)
    }

    /// Bytes the kept events hold (an estimate, see `Event::footprint`):
    /// what following the chain costs in memory.
    pub fn kept_bytes(&self) -> usize {
        let kept = self.followed.read().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|f| f.events.is_some())
            .map_or(0, |f| f.bytes)
    }

    /// The chain's state now.
    pub fn status(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        now: Millis,
    ) -> Result<ChainStatus, StoreError> {
        self.catch_up(store, now)?;
        let kept = self.followed.read().unwrap_or_else(PoisonError::into_inner);
        Ok(kept.as_ref().map_or_else(
            || Followed::new(now, self.max_bytes).status(),
            Followed::status,
        ))
    }

    /// The access review of `[since, until)`, as [`super::read`] makes it.
    pub fn review(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        since: Millis,
        until: Millis,
        now: Millis,
    ) -> Result<AccessReview, ReviewError> {
        check_window(since, until)?;
        self.catch_up(store, now)?;
        let kept = self.followed.read().unwrap_or_else(PoisonError::into_inner);
        let mut b = Builder::new(since, until);
        let Some(f) = kept.as_ref() else {
            return Ok(b.build(0));
        };
        let Some(events) = f.events.as_ref() else {
            // Past the memory cap: walk, as `jitgate report` does.
            drop(kept);
            return super::read(store.as_ref(), since, until);
        };
        b.faults_found(f.report.bad.first(), f.report.bad_count);
        for ev in events {
            b.apply(ev);
        }
        Ok(b.build(f.report.checked))
    }
}
