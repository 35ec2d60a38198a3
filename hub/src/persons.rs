//! Stable person and household ids across linkage runs, with the merges and splits between them.
//!
//! Each run clusters records afresh; this module carries the ids of the previous run over to
//! the new clusters so that a person keeps its id from month to month. An old id goes to the new
//! cluster holding most of its records (largest overlaps first, one id per cluster); a cluster
//! left without an id gets a fresh one, never a reused one. When one cluster gathers the records
//! of several old ids, the others are retired into it (a merge); when an old id's records end up
//! in several clusters, the ones without it are split from it. Both are recorded as events so
//! that indicators can show a revision instead of silently changing a past figure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A change of identity between two runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdEvent {
    /// `merge` or `split`.
    pub kind: EventKind,
    /// The id that holds the records now: the survivor of a merge, the new id of a split.
    pub id: i64,
    /// The id merged away, or the id split from.
    pub other_id: i64,
    /// Records concerned (moved by the merge, or taken by the split).
    pub records: usize,
}

/// The kind of an [`IdEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Two or more earlier ids now form one.
    Merge,
    /// Records of one earlier id now form another.
    Split,
}

impl EventKind {
    /// The code stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Merge => "merge",
            EventKind::Split => "split",
        }
    }
}

/// Ids for this run's clusters.
#[derive(Debug, Clone, Default)]
pub struct IdAssignment {
    /// Id per record (same order as the input).
    pub ids: Vec<i64>,
    /// Merges and splits against the previous run.
    pub events: Vec<IdEvent>,
    /// Ids issued for the first time.
    pub created: Vec<i64>,
    /// Earlier ids that no longer hold any record (merged away, or their records purged).
    pub retired: Vec<i64>,
}

/// Gives each cluster an id, carrying the previous ones over.
///
/// `clusters[i]` is record i's cluster in this run (any numbering); `previous[i]` its id in the
/// last run, if it had one; `live_before` every id that held records before (to see the ones
/// whose records all left); `next_id` the first id never issued, advanced as ids are created.
pub fn assign_ids(
    clusters: &[usize],
    previous: &[Option<i64>],
    live_before: &[i64],
    next_id: &mut i64,
) -> IdAssignment {
    // overlap[(cluster, old id)] = records in both.
    let mut overlap: HashMap<(usize, i64), usize> = HashMap::new();
    let mut old_sizes: HashMap<i64, usize> = HashMap::new();
    for (&c, old) in clusters.iter().zip(previous) {
        if let Some(old) = *old {
            *overlap.entry((c, old)).or_default() += 1;
            *old_sizes.entry(old).or_default() += 1;
        }
    }
    // Largest overlaps first; ties go to the older (smaller) id, then the lower cluster, so
    // that the result does not depend on hash order.
    let mut candidates: Vec<((usize, i64), usize)> =
        overlap.iter().map(|(k, v)| (*k, *v)).collect();
    candidates.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.0 .1.cmp(&b.0 .1))
            .then(a.0 .0.cmp(&b.0 .0))
    });
    let mut cluster_id: HashMap<usize, i64> = HashMap::new();
    let mut taken: HashMap<i64, usize> = HashMap::new();
    for ((c, old), _) in &candidates {
        if cluster_id.contains_key(c) || taken.contains_key(old) {
            continue;
        }
        cluster_id.insert(*c, *old);
        taken.insert(*old, *c);
    }
    let mut out = IdAssignment::default();
    // Fresh ids in order of first appearance, so that a rerun issues them the same way.
    let mut ids = Vec::with_capacity(clusters.len());
    for &c in clusters {
        let id = *cluster_id.entry(c).or_insert_with(|| {
            let id = *next_id;
            *next_id += 1;
            out.created.push(id);
            id
        });
        ids.push(id);
    }
    // Events: every (cluster, old id) overlap whose old id is not the cluster's id.
    let mut moved: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for ((c, old), n) in &overlap {
        let id = cluster_id[c];
        if id != *old {
            *moved.entry((id, *old)).or_default() += n;
        }
    }
    for ((id, old), records) in moved {
        // The old id survives elsewhere: these records split from it. It does not: it was
        // merged into this cluster (or into several, each a merge).
        let kind = if taken.contains_key(&old) {
            EventKind::Split
        } else {
            EventKind::Merge
        };
        out.events.push(IdEvent {
            kind,
            id,
            other_id: old,
            records,
        });
    }
    out.retired = live_before
        .iter()
        .copied()
        .filter(|old| !taken.contains_key(old))
        .collect();
    out.retired.sort_unstable();
    out.retired.dedup();
    out.ids = ids;
    out
}

/// Households: records of one operator's household, and all records of one person, belong
/// together. Returns a cluster number per record.
pub fn household_clusters(persons: &[usize], households: &[Option<(&str, &str)>]) -> Vec<usize> {
    let n = persons.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut first_of_person: HashMap<usize, usize> = HashMap::new();
    let mut first_of_household: HashMap<(&str, &str), usize> = HashMap::new();
    for i in 0..n {
        let join = |parent: &mut Vec<usize>, j: usize| {
            let (a, b) = (find(parent, i), find(parent, j));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        };
        if let Some(&j) = first_of_person.get(&persons[i]) {
            join(&mut parent, j);
        } else {
            first_of_person.insert(persons[i], i);
        }
        if let Some(h) = households[i] {
            if let Some(&j) = first_of_household.get(&h) {
                join(&mut parent, j);
            } else {
                first_of_household.insert(h, i);
            }
        }
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_over_and_new_clusters_get_fresh_ids() {
        let mut next = 10;
        // Run 1: three clusters, nothing before.
        let first = assign_ids(&[0, 0, 1, 2], &[None; 4], &[], &mut next);
        assert_eq!(first.ids, vec![10, 10, 11, 12]);
        assert_eq!(next, 13);
        assert!(first.events.is_empty());
        // Run 2: same clusters numbered differently, plus a new record and a new person.
        let prev: Vec<Option<i64>> = first
            .ids
            .iter()
            .map(|&i| Some(i))
            .chain([None, None])
            .collect();
        let second = assign_ids(&[5, 5, 7, 9, 9, 8], &prev, &[10, 11, 12], &mut next);
        assert_eq!(second.ids, vec![10, 10, 11, 12, 12, 13]);
        assert_eq!(second.created, vec![13]);
        assert!(second.events.is_empty() && second.retired.is_empty());
    }

    #[test]
    fn a_merge_keeps_the_larger_id_and_retires_the_other() {
        let mut next = 3;
        let prev = [Some(1), Some(1), Some(2)];
        let a = assign_ids(&[0, 0, 0], &prev, &[1, 2], &mut next);
        assert_eq!(a.ids, vec![1, 1, 1]);
        assert_eq!(
            a.events,
            vec![IdEvent {
                kind: EventKind::Merge,
                id: 1,
                other_id: 2,
                records: 1
            }]
        );
        assert_eq!(a.retired, vec![2]);
        assert_eq!(next, 3, "no id issued");
    }

    #[test]
    fn a_split_gives_a_fresh_id_never_a_reused_one() {
        // Id 2 was retired by an earlier merge; the split must not bring it back.
        let mut next = 3;
        let prev = [Some(1), Some(1), Some(1)];
        let a = assign_ids(&[0, 0, 1], &prev, &[1], &mut next);
        assert_eq!(a.ids, vec![1, 1, 3]);
        assert_eq!(a.events[0].kind, EventKind::Split);
        assert_eq!((a.events[0].id, a.events[0].other_id), (3, 1));
        assert!(a.retired.is_empty());
    }

    #[test]
    fn purged_ids_are_retired() {
        let mut next = 5;
        let a = assign_ids(&[0], &[Some(4)], &[3, 4], &mut next);
        assert_eq!(a.ids, vec![4]);
        assert_eq!(a.retired, vec![3]);
    }

    #[test]
    fn households_join_members_and_persons() {
        // Records 0,1: one household at operator a; record 2 is person of record 1 at operator b;
        // record 3 alone.
        let persons = [0, 1, 1, 2];
        let hh = [
            Some(("a", "h1")),
            Some(("a", "h1")),
            None,
            Some(("b", "h9")),
        ];
        let c = household_clusters(&persons, &hh);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_ne!(c[0], c[3]);
    }
}
