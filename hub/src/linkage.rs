//! Linkage, first version: which stored records are the same person, from pseudonyms only.
//!
//! A node is one operator's record (same operator and record reference across months). Nodes
//! sharing a match-key value in some family are candidate pairs (blocking on the keys, so cost
//! grows with the number of records, not its square; over-frequent values are skipped). A pair's
//! score adds the weight of every family that agrees and subtracts contradictions (both sexes
//! known and different; birth years more than a year apart). Pairs above the threshold are merged
//! strongest first, and a merge is refused when it would put contradicting records in one person
//! or grow a person past the size cap, so one bad pair cannot chain two groups together.
//!
//! This version uses fixed weights (documented defaults); estimating them from the data (EM)
//! and term-frequency adjustment are the next steps.

use std::collections::HashMap;

/// Weight of agreement per key family (log-odds scale; the threshold is [`LinkParams::threshold`]).
pub fn family_weight(code: &str) -> f64 {
    match code {
        "ndf" => 12.0,
        "pdf" => 9.0,
        "ndx" => 9.0,
        "nds" => 8.0,
        "fds" => 8.0,
        "nfm" => 7.0,
        "nfy" => 5.0,
        "nfs" => 3.0,
        _ => 0.0,
    }
}

/// Linkage parameters.
#[derive(Debug, Clone)]
pub struct LinkParams {
    /// Minimum score to link two records of different operators.
    pub threshold: f64,
    /// Extra evidence needed for two records of the same operator (operators seldom register a
    /// person twice).
    pub same_operator_penalty: f64,
    /// Penalty when both sexes are known and differ.
    pub sex_conflict: f64,
    /// Penalty when both birth years are known and more than one year apart.
    pub year_conflict: f64,
    /// Penalty when both records have exact birth dates yet share no key built on the full date
    /// (their dates differ): two namesakes born the same year.
    pub date_disagreement: f64,
    /// Key values shared by more records than this are not used for blocking.
    pub max_block: usize,
    /// Largest number of records in one person.
    pub max_cluster: usize,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            threshold: 7.0,
            same_operator_penalty: 6.0,
            sex_conflict: 20.0,
            year_conflict: 20.0,
            date_disagreement: 6.0,
            max_block: 40,
            max_cluster: 24,
        }
    }
}

/// One operator's record, as linkage sees it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Operator.
    pub operator: String,
    /// Record reference.
    pub record_ref: String,
    /// 'M' or 'F'.
    pub sex: Option<char>,
    /// Birth year.
    pub birth_year: Option<i32>,
    /// The birth date behind the keys is a real full date (quality `exact`).
    pub exact_date: bool,
    /// (family code, stored key value).
    pub keys: Vec<(String, String)>,
}

struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
    sexes: Vec<(bool, bool)>,
    years: Vec<Option<(i32, i32)>>,
}

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
}

fn pair_score(a: &Node, b: &Node, p: &LinkParams) -> f64 {
    let mut agreeing: Vec<&str> = Vec::new();
    for (fa, va) in &a.keys {
        if !agreeing.contains(&fa.as_str()) && b.keys.iter().any(|(fb, vb)| fb == fa && vb == va) {
            agreeing.push(fa);
        }
    }
    let mut score: f64 = agreeing.iter().map(|f| family_weight(f)).sum();
    if let (Some(x), Some(y)) = (a.sex, b.sex) {
        if x != y {
            score -= p.sex_conflict;
        } else {
            score += 1.0;
        }
    }
    if let (Some(x), Some(y)) = (a.birth_year, b.birth_year) {
        if (x - y).abs() > 1 {
            score -= p.year_conflict;
        } else if x == y {
            score += 2.0;
        }
    }
    const FULL_DATE_FAMILIES: [&str; 6] = ["ndf", "pdf", "nds", "fds", "ndx", "nfm"];
    if a.exact_date && b.exact_date && !agreeing.iter().any(|f| FULL_DATE_FAMILIES.contains(f)) {
        score -= p.date_disagreement;
    }
    if a.operator == b.operator {
        score -= p.same_operator_penalty;
    }
    score
}

/// Links nodes into persons; returns a person index per node (0-based, dense).
pub fn link(nodes: &[Node], p: &LinkParams) -> Vec<usize> {
    let mut blocks: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for (f, v) in &n.keys {
            blocks.entry((f.as_str(), v.as_str())).or_default().push(i);
        }
    }
    let mut pairs: HashMap<(usize, usize), ()> = HashMap::new();
    for members in blocks
        .values()
        .filter(|m| m.len() > 1 && m.len() <= p.max_block)
    {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if i != j {
                    pairs.insert((i.min(j), i.max(j)), ());
                }
            }
        }
    }
    let mut scored: Vec<(f64, usize, usize)> = pairs
        .into_keys()
        .map(|(i, j)| (pair_score(&nodes[i], &nodes[j], p), i, j))
        .filter(|(s, _, _)| *s >= p.threshold)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut uf = UnionFind {
        parent: (0..nodes.len()).collect(),
        size: vec![1; nodes.len()],
        sexes: nodes
            .iter()
            .map(|n| (n.sex == Some('M'), n.sex == Some('F')))
            .collect(),
        years: nodes.iter().map(|n| n.birth_year.map(|y| (y, y))).collect(),
    };
    for (_, i, j) in scored {
        let (a, b) = (uf.find(i), uf.find(j));
        if a == b || uf.size[a] + uf.size[b] > p.max_cluster {
            continue;
        }
        let (sa, sb) = (uf.sexes[a], uf.sexes[b]);
        let sexes = (sa.0 || sb.0, sa.1 || sb.1);
        if sexes.0 && sexes.1 {
            continue;
        }
        let years = match (uf.years[a], uf.years[b]) {
            (Some((lo1, hi1)), Some((lo2, hi2))) => Some((lo1.min(lo2), hi1.max(hi2))),
            (x, None) | (None, x) => x,
        };
        if years.is_some_and(|(lo, hi)| hi - lo > 2) {
            continue;
        }
        uf.parent[b] = a;
        uf.size[a] += uf.size[b];
        uf.sexes[a] = sexes;
        uf.years[a] = years;
    }
    let mut ids: HashMap<usize, usize> = HashMap::new();
    (0..nodes.len())
        .map(|i| {
            let r = uf.find(i);
            let next = ids.len();
            *ids.entry(r).or_insert(next)
        })
        .collect()
}

/// Pairwise quality of a clustering against the truth (one label per node, same order).
#[derive(Debug, Clone, Copy)]
pub struct PairwiseQuality {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// (estimated persons − true persons) / true persons.
    pub count_error: f64,
}

/// Scores predicted clusters against true labels, counting pairs of nodes.
pub fn score<T: std::hash::Hash + Eq + Clone>(predicted: &[usize], truth: &[T]) -> PairwiseQuality {
    let mut joint: HashMap<(usize, T), u64> = HashMap::new();
    let mut pred: HashMap<usize, u64> = HashMap::new();
    let mut real: HashMap<T, u64> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        *joint.entry((*p, t.clone())).or_default() += 1;
        *pred.entry(*p).or_default() += 1;
        *real.entry(t.clone()).or_default() += 1;
    }
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let tp: u64 = joint.values().map(|&n| pairs(n)).sum();
    let pp: u64 = pred.values().map(|&n| pairs(n)).sum();
    let tt: u64 = real.values().map(|&n| pairs(n)).sum();
    let precision = if pp == 0 { 1.0 } else { tp as f64 / pp as f64 };
    let recall = if tt == 0 { 1.0 } else { tp as f64 / tt as f64 };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    PairwiseQuality {
        precision,
        recall,
        f1,
        count_error: (pred.len() as f64 - real.len() as f64) / real.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, sex: char, year: i32, keys: &[(&str, &str)]) -> Node {
        Node {
            operator: op.into(),
            record_ref: format!("r_{op}_{}", keys.len()),
            sex: Some(sex),
            birth_year: Some(year),
            exact_date: true,
            keys: keys
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn strong_keys_link_and_contradictions_do_not() {
        let p = LinkParams::default();
        let nodes = vec![
            node("a", 'M', 1980, &[("ndf", "k1"), ("nfy", "y1")]),
            node("b", 'M', 1980, &[("ndf", "k1"), ("nfy", "y1")]),
            // Same weak key, different sex: never the same person.
            node("c", 'F', 1980, &[("nfy", "y1")]),
            // Phonetic + year agree: linked.
            node("d", 'M', 1980, &[("pdf", "p1"), ("nfy", "y1")]),
            node("e", 'M', 1981, &[("pdf", "p1"), ("nfy", "y1")]),
        ];
        let ids = link(&nodes, &p);
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        assert_eq!(ids[3], ids[4]);
        let q = score(&ids, &["x", "x", "y", "z", "z"]);
        assert!((q.f1 - 1.0).abs() < 1e-9, "{q:?}");
    }

    #[test]
    fn one_bad_pair_does_not_chain_two_people() {
        let p = LinkParams::default();
        let nodes = vec![
            node("a", 'M', 1960, &[("ndf", "father"), ("nds", "shared")]),
            node("b", 'M', 1960, &[("ndf", "father")]),
            node("c", 'M', 1990, &[("ndf", "son"), ("nds", "shared")]),
            node("d", 'M', 1990, &[("ndf", "son")]),
        ];
        let ids = link(&nodes, &p);
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[2], ids[3]);
        assert_ne!(
            ids[0], ids[2],
            "the shared key must not merge father and son"
        );
    }
}
