//! The values requests are drawn from, and the generator.
//!
//! Values come from what the policies declare (tasks, max-ttl), what the
//! fixtures use (roles, groups, ids, resources, justifications, attribute
//! values, TTLs, MFA ages, times) and the bounds properties state; every
//! number that is a bound is explored at, one below and one above.
//!
//! The random source is a SplitMix64 of our own rather than a crate: a
//! seed printed today must reproduce the same requests after any
//! dependency upgrade, and ten lines are easier to keep stable than a
//! crate's stream guarantees.

use std::collections::{BTreeMap, BTreeSet};

use super::properties::{Checked, Condition};
use crate::fixture::Loaded;
use crate::request::{Attributes, Request, Subject, SubjectKind, Ticket, TicketState};

/// SplitMix64: small, fast, and its stream is fixed by its definition.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One element of `xs` (`None` when empty).
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        xs.get(self.below(xs.len() as u64) as usize)
    }
}

const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;

/// Values shared by every set: what the fixtures and properties use.
#[derive(Debug, Clone, Default)]
pub struct Domain {
    /// Subject ids (fixture subjects and assignees).
    pub subject_ids: Vec<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Resources.
    pub resources: Vec<String>,
    /// Entitlements.
    pub entitlements: Vec<String>,
    /// Justifications.
    pub justifications: Vec<String>,
    /// Ticket ids.
    pub ticket_ids: Vec<String>,
    /// Requested TTLs worth trying (bounds and their neighbours).
    pub ttls: Vec<u32>,
    /// The largest TTL of interest; random TTLs lie in 1..=2×this.
    pub ttl_span: u32,
    /// MFA ages worth trying, seconds (negative: in the future).
    pub mfa_ages: Vec<i64>,
    /// Attribute keys and the values worth trying.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Monday 00:00 UTC of the week the fixtures' times fall in.
    pub week_start: u64,
    /// Hours of the day (UTC) fixtures use, with their neighbours.
    pub hours: Vec<u64>,
}

fn push<T: Ord + Clone>(set: &mut BTreeSet<T>, v: &T) {
    if !set.contains(v) {
        set.insert(v.clone());
    }
}

fn bounds_of(c: &Condition, ttls: &mut BTreeSet<u32>, ages: &mut BTreeSet<i64>) {
    for b in c.requested_ttl.iter().flat_map(|r| r.bounds()) {
        ttls.insert(u32::try_from(b).unwrap_or(u32::MAX));
    }
    for b in c.mfa_age.iter().flat_map(|r| r.bounds()) {
        ages.insert(i64::try_from(b).unwrap_or(i64::MAX));
    }
}

impl Domain {
    /// The domain of `loaded`'s fixtures and `properties`' bounds.
    pub fn new(loaded: &Loaded, properties: &[Checked]) -> Domain {
        let mut ids = BTreeSet::new();
        let mut roles = BTreeSet::new();
        let mut groups = BTreeSet::new();
        let mut resources = BTreeSet::new();
        let mut entitlements = BTreeSet::new();
        let mut justifications = BTreeSet::new();
        let mut tickets = BTreeSet::new();
        let mut ttls: BTreeSet<u32> = BTreeSet::new();
        let mut ages: BTreeSet<i64> = BTreeSet::new();
        let mut attributes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut hours = BTreeSet::new();
        for r in &loaded.requests {
            push(&mut ids, &r.subject.id);
            for x in &r.subject.roles {
                push(&mut roles, x);
            }
            for x in &r.subject.groups {
                push(&mut groups, x);
            }
            push(&mut resources, &r.resource);
            push(&mut entitlements, &r.entitlement);
            push(&mut justifications, &r.justification);
            ttls.insert(r.requested_ttl);
            if let Some(m) = r.subject.mfa_at {
                ages.insert(r.now as i64 - m as i64);
            }
            if let Some(t) = &r.ticket {
                push(&mut tickets, &t.id);
                if let Some(a) = &t.assignee {
                    push(&mut ids, a);
                }
            }
            for (k, v) in &r.attributes.0 {
                attributes.entry(k.clone()).or_default().insert(v.clone());
            }
            hours.insert(r.now % DAY / 3600);
        }
        ttls.extend(loaded.ttls.iter().copied());
        for set in &loaded.sets {
            for p in set.engine.policies() {
                ttls.insert(p.max_ttl);
            }
            let c = set.engine.config();
            ttls.insert(c.global_ttl_cap);
            ttls.extend(c.task_caps.values().copied());
        }
        for p in properties {
            bounds_of(&p.claim.when, &mut ttls, &mut ages);
            if let Some(u) = &p.claim.unless {
                bounds_of(u, &mut ttls, &mut ages);
            }
            // A claim's TTL bound is a requested TTL worth trying.
            for b in p.claim.ttl.iter().flat_map(|r| r.bounds()) {
                ttls.insert(u32::try_from(b).unwrap_or(u32::MAX));
            }
            for (k, vs) in &p.claim.when.attributes {
                for v in vs.values().iter().flatten() {
                    attributes.entry(k.clone()).or_default().insert(v.clone());
                }
            }
        }
        // Every bound, one below and one above.
        let ttl_span = ttls.iter().copied().max().unwrap_or(3600).max(1);
        let ttls: Vec<u32> = ttls
            .iter()
            .flat_map(|&t| [t.saturating_sub(1), t, t.saturating_add(1)])
            .chain([1])
            .filter(|&t| t >= 1)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mfa_ages: Vec<i64> = ages
            .iter()
            .flat_map(|&a| [a - 1, a, a + 1])
            .chain([0, -1, -60, 30 * 86_400])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Integer-looking attribute values are bounds too (a tz offset of
        // 840 is explored as 839, 840 and 841).
        let attributes = attributes
            .into_iter()
            .map(|(k, vs)| {
                let mut all = BTreeSet::new();
                for v in vs {
                    if let Ok(n) = v.parse::<i64>() {
                        for m in [n - 1, n + 1] {
                            all.insert(m.to_string());
                        }
                    }
                    all.insert(v);
                }
                (k, all.into_iter().collect())
            })
            .collect();
        let first_now = loaded.requests.first().map_or(1_795_564_800, |r| r.now);
        // Monday 00:00 UTC (1970-01-01 was a Thursday).
        let week_start = (first_now / DAY).saturating_sub((first_now / DAY + 3) % 7) * DAY;
        let hours = hours
            .iter()
            .flat_map(|&h| [(h + 23) % 24, h, (h + 1) % 24])
            .chain([0, 23])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let or = |s: BTreeSet<String>, d: &str| -> Vec<String> {
            if s.is_empty() {
                vec![d.to_string()]
            } else {
                s.into_iter().collect()
            }
        };
        Domain {
            subject_ids: or(ids, "alice"),
            roles: roles.into_iter().collect(),
            groups: groups.into_iter().collect(),
            resources: or(resources, "resource"),
            entitlements: or(entitlements, "entitlement"),
            justifications: or(justifications, "the work the ticket asks for"),
            ticket_ids: or(tickets, "INC-1"),
            ttls,
            ttl_span,
            mfa_ages,
            attributes,
            week_start,
            hours,
        }
    }

    /// A request for `set`, drawn from the domain. Mostly tasks the set
    /// declares; now and then one it does not (an invalid request).
    pub fn generate(&self, tasks: &[String], rng: &mut Rng) -> Request {
        let task = if tasks.is_empty() || rng.chance(1, 64) {
            "explore-undeclared-task".to_string()
        } else {
            rng.pick(tasks).cloned().unwrap_or_default()
        };
        let pick = |rng: &mut Rng, xs: &[String]| rng.pick(xs).cloned().unwrap_or_default();
        let subset = |rng: &mut Rng, xs: &[String]| -> Vec<String> {
            // Mostly one or two of them, sometimes none, sometimes many.
            let n = match rng.below(8) {
                0 => 0,
                1..=4 => 1,
                5 | 6 => 2,
                _ => xs.len(),
            };
            let mut out: Vec<String> = Vec::new();
            for _ in 0..n {
                if let Some(x) = rng.pick(xs)
                    && !out.contains(x)
                {
                    out.push(x.clone());
                }
            }
            out
        };
        let now = self.time(rng);
        let subject_id = pick(rng, &self.subject_ids);
        let mfa_at = if rng.chance(1, 6) {
            None
        } else {
            let age = if rng.chance(3, 4) {
                rng.pick(&self.mfa_ages).copied().unwrap_or(60)
            } else {
                rng.below(2 * 3600) as i64
            };
            u64::try_from(now as i64 - age).ok()
        };
        let ticket = if rng.chance(1, 5) {
            None
        } else {
            let state = match rng.below(5) {
                0 => TicketState::Open,
                1 => TicketState::InProgress,
                2 => TicketState::OnHold,
                3 => TicketState::Resolved,
                _ => TicketState::Closed,
            };
            let assignee = match rng.below(4) {
                0 => None,
                1 => Some(pick(rng, &self.subject_ids)),
                _ => Some(subject_id.clone()),
            };
            Some(Ticket {
                id: pick(rng, &self.ticket_ids),
                state,
                priority: 1 + rng.below(5) as u8,
                assignee,
                opened_at: now.saturating_sub(rng.below(3 * DAY)),
            })
        };
        let requested_ttl = if rng.chance(2, 3) {
            rng.pick(&self.ttls).copied().unwrap_or(1800)
        } else {
            1 + rng.below(u64::from(self.ttl_span) * 2) as u32
        };
        let mut attributes = Vec::new();
        for (k, vs) in &self.attributes {
            if rng.chance(2, 3)
                && let Some(v) = rng.pick(vs)
            {
                attributes.push((k.clone(), v.clone()));
            }
        }
        Request {
            id: "explore".into(),
            subject: Subject {
                id: subject_id,
                kind: if rng.chance(1, 4) {
                    SubjectKind::Service
                } else {
                    SubjectKind::Human
                },
                roles: subset(rng, &self.roles),
                groups: subset(rng, &self.groups),
                mfa_at,
            },
            task,
            resource: pick(rng, &self.resources),
            entitlement: pick(rng, &self.entitlements),
            justification: pick(rng, &self.justifications),
            requested_ttl,
            ticket,
            now,
            attributes: Attributes(attributes),
        }
    }

    /// A time in the fixtures' week: any day, hours near the ones fixtures
    /// use and midnight, minutes and seconds at the edges or anywhere.
    fn time(&self, rng: &mut Rng) -> u64 {
        let day = rng.below(7);
        let hour = if rng.chance(1, 2) {
            rng.pick(&self.hours).copied().unwrap_or(0)
        } else {
            rng.below(24)
        };
        let edge = |rng: &mut Rng| match rng.below(3) {
            0 => 0,
            1 => 59,
            _ => rng.below(60),
        };
        let t = self.week_start + day * DAY + hour * 3600 + edge(rng) * 60 + edge(rng);
        // Now and then the week before or after, so "last Sunday 23:59"
        // next to "Monday 00:00" is met across the week's ends too.
        match rng.below(16) {
            0 => t.saturating_sub(WEEK),
            1 => t + WEEK,
            _ => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{RequestLimits, Ticket};

    fn fixture_request() -> Request {
        Request {
            id: "case".into(),
            subject: Subject {
                id: "alice".into(),
                kind: SubjectKind::Human,
                roles: vec!["helpdesk".into()],
                groups: vec!["oncall".into()],
                mfa_at: Some(1_795_600_800 - 900),
            },
            task: "file-recovery".into(),
            resource: "fs".into(),
            entitlement: "op".into(),
            justification: "restore the finance share".into(),
            requested_ttl: 1800,
            ticket: Some(Ticket {
                id: "INC-1".into(),
                state: TicketState::Open,
                priority: 3,
                assignee: Some("bob".into()),
                opened_at: 1_795_500_000,
            }),
            // Wednesday 2026-11-25 10:00 UTC.
            now: 1_795_600_800,
            attributes: Attributes(vec![("tz-offset-minutes".into(), "840".into())]),
        }
    }

    fn domain() -> Domain {
        let loaded = Loaded {
            sets: Vec::new(),
            requests: vec![fixture_request()],
            ttls: vec![3600],
        };
        let props = super::super::properties::parse(
            "properties:\n  - never: {outcome: allow, when: {requested-ttl: {min: 7200}, subject.mfa-age: {max: 300}}}\n",
        )
        .expect("properties");
        Domain::new(&loaded, &props)
    }

    #[test]
    fn every_bound_is_explored_at_below_and_above() {
        let d = domain();
        for t in [1, 1799, 1800, 1801, 3599, 3600, 3601, 7199, 7200, 7201] {
            assert!(d.ttls.contains(&t), "ttl {t} missing: {:?}", d.ttls);
        }
        for a in [899, 900, 901, 299, 300, 301, -1, 0] {
            assert!(
                d.mfa_ages.contains(&a),
                "mfa age {a} missing: {:?}",
                d.mfa_ages
            );
        }
        let tz = &d.attributes["tz-offset-minutes"];
        for v in ["839", "840", "841"] {
            assert!(tz.contains(&v.to_string()), "{tz:?}");
        }
        for h in [0, 9, 10, 11, 23] {
            assert!(d.hours.contains(&h), "{:?}", d.hours);
        }
        // Monday 2026-11-23 00:00 UTC.
        assert_eq!(d.week_start, 1_795_392_000);
        assert_eq!(
            super::super::properties::Weekday::of(d.week_start),
            super::super::properties::Weekday::Monday
        );
        assert!(d.subject_ids.contains(&"bob".to_string()));
    }

    #[test]
    fn generated_requests_are_well_formed_and_cover_the_domain() {
        let d = domain();
        let tasks = vec!["file-recovery".to_string(), "saas-admin".to_string()];
        let mut rng = Rng::new(42);
        let mut states = BTreeSet::new();
        let mut days = BTreeSet::new();
        let mut services = 0;
        let mut undeclared = 0;
        for _ in 0..5000 {
            let r = d.generate(&tasks, &mut rng);
            r.validate_shape(&RequestLimits::default())
                .unwrap_or_else(|e| panic!("{r:?}: {e:?}"));
            if let Some(t) = &r.ticket {
                states.insert(format!("{:?}", t.state));
            }
            days.insert((r.now / DAY + 3) % 7);
            services += usize::from(r.subject.kind == SubjectKind::Service);
            undeclared += usize::from(!tasks.contains(&r.task));
        }
        assert_eq!(states.len(), 5, "{states:?}");
        assert_eq!(days.len(), 7, "{days:?}");
        assert!(services > 500, "{services}");
        assert!(undeclared > 20 && undeclared < 200, "{undeclared}");
    }

    #[test]
    fn the_stream_is_fixed_by_the_seed() {
        let d = domain();
        let tasks = vec!["file-recovery".to_string()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| d.generate(&tasks, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // SplitMix64's first output for seed 0 is fixed by its definition.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
