//! Which loaded policies judge a task: an index kept as policies are loaded,
//! so that selecting a decision's policies costs a look-up and the length
//! of its own list, whatever number of policies for *other* tasks is
//! loaded (issue 17: a decision must cost the same whatever unrelated
//! policies are loaded). Scanning every policy's `tasks` made a decision
//! with 500 policies loaded 1.27× one with 10.

use std::collections::HashMap;

/// Positions, in load order, of the policies that apply to each task: the
/// same policies, in the same order, as keeping each loaded policy whose
/// [`crate::policy::PolicyMeta::applies_to`] holds.
#[derive(Debug, Default, Clone)]
pub(super) struct TaskIndex {
    /// Every task some policy names, with the policies that name it or
    /// `*`, ascending.
    by_task: HashMap<String, Vec<usize>>,
    /// The policies that name `*`, ascending: all any other task selects.
    wildcard: Vec<usize>,
}

impl TaskIndex {
    /// The index of policies declaring these tasks, in load order.
    pub(super) fn build<'a>(tasks: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut index = TaskIndex::default();
        for (pos, t) in tasks.into_iter().enumerate() {
            index.push(pos, t);
        }
        index
    }

    /// Add the policy at `pos`, which must be past every position added
    /// before (policies are only ever appended; a rollback rebuilds).
    pub(super) fn push(&mut self, pos: usize, tasks: &[String]) {
        if tasks.iter().any(|t| t == "*") {
            // Applies to every task, named or not: its other tasks add
            // nothing.
            self.wildcard.push(pos);
            for list in self.by_task.values_mut() {
                list.push(pos);
            }
            return;
        }
        for t in tasks {
            // A task first named now is also judged by every `*` policy
            // loaded before, which precede this one.
            let wildcard = &self.wildcard;
            let list = self
                .by_task
                .entry(t.clone())
                .or_insert_with(|| wildcard.clone());
            // A task declared twice selects the policy once.
            if list.last() != Some(&pos) {
                list.push(pos);
            }
        }
    }

    /// The positions of the policies that apply to `task`, ascending.
    pub(super) fn select(&self, task: &str) -> &[usize] {
        self.by_task
            .get(task)
            .map_or(self.wildcard.as_slice(), Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyMeta;
    use proptest::prelude::*;

    fn meta(tasks: &[String]) -> PolicyMeta {
        PolicyMeta {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            tasks: tasks.to_vec(),
            max_ttl: 60,
            digest: String::new(),
            path: "p.wasm".into(),
            size: 0,
            warnings: Vec::new(),
        }
    }

    /// What `Engine::decide` selected before the index: every policy whose
    /// `applies_to` holds, in load order.
    fn scan(policies: &[PolicyMeta], task: &str) -> Vec<usize> {
        (0..policies.len())
            .filter(|&i| policies[i].applies_to(task))
            .collect()
    }

    /// Task names from a small alphabet, so that policies share tasks, with
    /// `*` and repeats among them.
    fn task() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["a", "b", "c", "d", "file-recovery"]).prop_map(String::from),
            1 => Just("*".to_string()),
            1 => prop::sample::select(vec!["", "e", "ab"]).prop_map(String::from),
        ]
    }

    fn policy_set() -> impl Strategy<Value = Vec<Vec<String>>> {
        prop::collection::vec(prop::collection::vec(task(), 0..4), 0..24)
    }

    fn agree(policies: &[PolicyMeta], index: &TaskIndex, queries: &[String]) {
        let mut all: Vec<String> = queries.to_vec();
        all.extend(policies.iter().flat_map(|p| p.tasks.iter().cloned()));
        all.extend(["*", "", "nobody-declares-this"].map(String::from));
        for t in &all {
            assert_eq!(index.select(t), scan(policies, t).as_slice(), "task {t:?}");
        }
    }

    proptest! {
        // A failure prints its minimal case; no regression file is
        // written into the source tree (as tests/e2e/props.rs).
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Built at once or grown policy by policy (as `load_bytes` does),
        /// the index selects what the scan selected, in the same order.
        #[test]
        fn the_index_selects_what_the_scan_selected(
            set in policy_set(),
            queries in prop::collection::vec(task(), 0..8),
        ) {
            let policies: Vec<PolicyMeta> = set.iter().map(|t| meta(t)).collect();
            let built = TaskIndex::build(policies.iter().map(|p| p.tasks.as_slice()));
            agree(&policies, &built, &queries);
            let mut grown = TaskIndex::default();
            for (pos, p) in policies.iter().enumerate() {
                grown.push(pos, &p.tasks);
                agree(&policies[..=pos], &grown, &queries);
            }
        }

        /// A rollback (a folder that fails half-way) rebuilds from what
        /// stays loaded; loading continues from there.
        #[test]
        fn after_a_rollback_and_more_loads_the_index_still_agrees(
            set in policy_set(),
            more in policy_set(),
            keep in 0usize..24,
        ) {
            let mut policies: Vec<PolicyMeta> = set.iter().map(|t| meta(t)).collect();
            policies.truncate(keep.min(policies.len()));
            let mut index = TaskIndex::build(policies.iter().map(|p| p.tasks.as_slice()));
            for t in &more {
                policies.push(meta(t));
                index.push(policies.len() - 1, t);
            }
            agree(&policies, &index, &[]);
        }
    }

    #[test]
    fn wildcards_merge_in_load_order_with_named_policies() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let set = [
            s(&["*"]),
            s(&["a"]),
            s(&["b", "a", "a"]),
            s(&["*", "a"]),
            s(&["c"]),
        ];
        let index = TaskIndex::build(set.iter().map(Vec::as_slice));
        assert_eq!(index.select("a"), &[0, 1, 2, 3]);
        assert_eq!(index.select("b"), &[0, 2, 3]);
        assert_eq!(index.select("c"), &[0, 3, 4]);
        assert_eq!(index.select("other"), &[0, 3]);
    }
}
