//! Linkage: which stored records are the same person, from pseudonyms only.
//!
//! A node is one operator's record (same operator and record reference across months).
//!
//! 1. **Blocking.** Nodes sharing a keyed value are candidate pairs; a value held by more than
//!    [`LinkParams::max_block`] nodes is too common to block on (cost stays near-linear). The two
//!    token + date families share one HMAC domain, so a token typed in the other name field
//!    (swapped surname and first name) still meets its counterpart.
//! 2. **Comparison.** Each pair gets an agreement pattern: an identity level (the strongest
//!    agreeing key family, split by whether both records carry exact dates that disagree) crossed
//!    with a birth-year level, plus sex, nationality group, household role and administrative
//!    status (agree / differ / unknown).
//! 3. **Weights estimated from the data.** Fellegi–Sunter m- and u-probabilities of every level
//!    are estimated by EM over the candidate pairs (no truth needed); name+date and year form one
//!    comparison because the keys make them dependent by construction, the others are
//!    conditionally independent. **Term-frequency adjustment** on the keyed values: agreement on a
//!    value held by many records (a common name pair) weighs less than on a rare one.
//! 4. **Clustering.** Pairs above the threshold are merged strongest first; a merge is refused
//!    when it would put two sexes, birth years more than [`LinkParams::max_year_span`] apart or
//!    more than [`LinkParams::max_cluster`] records in one person, so one bad pair cannot chain
//!    two groups. Two records of one operator need [`LinkParams::same_operator_penalty`] more
//!    evidence: operators seldom register someone twice.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;
use serde::Serialize;
use synchro_shared::template::HouseholdRole;

/// Key families in the order used by the identity levels; `tsd` and `tfd` share one domain,
/// as do `tsy` and `tfy`.
pub const FAMILIES: [&str; 14] = [
    "ndf", "pdf", "tsd", "tfd", "ndx", "nfm", "nfy", "nfd", "tsy", "tfy", "sny", "dsf", "nym",
    "nyd",
];
const NDF: usize = 0;
const PDF: usize = 1;
const TSD: usize = 2;
const TFD: usize = 3;
const NDX: usize = 4;
const NFM: usize = 5;
const NFY: usize = 6;
const NFD: usize = 7;
const TSY: usize = 8;
const TFY: usize = 9;
const SNY: usize = 10;
const DSF: usize = 11;
const NYM: usize = 12;
const NYD: usize = 13;
/// Pseudo-family of a token + date agreeing across the surname and first-name tags.
const CROSS: usize = 14;
/// Pseudo-family of a token + initial + year agreeing across the two tags.
const CROSS_YEAR: usize = 15;
/// Families whose keys exist only when the record has a first name.
const NEED_FIRST_NAME: [usize; 8] = [NDF, PDF, TFD, NFY, NFD, TFY, NYM, NYD];

/// Identity levels, strongest first: what the keys say about names and date.
pub const IDENTITY_LEVELS: [&str; 19] = [
    "name + first name + date (ndf)",
    "phonetic names + date (pdf)",
    "surname token and first-name token + date (tsd+tfd)",
    "names + date, day and month swapped (ndx)",
    "names + day and month, year differs (nfm)",
    "names + year and month or day, the other differs (nym/nyd)",
    "one token + date, name fields swapped",
    "surname token + date (tsd), a first name missing",
    "first-name token + date (tfd)",
    "surname token + date, first names differ, same initial",
    "surname token + date, first initials differ (twins?)",
    "surname end + date (dsf), a first name missing",
    "names + year (nfy)",
    "one token + other initial + year (tsy/tfy)",
    "surname token + year (sny), a first name missing",
    "names or token + year, exact dates differ",
    "names + decade (nfd)",
    "names + decade, exact dates differ",
    "no key",
];
const YEAR_LEVELS: [&str; 4] = [
    "same year",
    "years 1 apart",
    "years further apart",
    "unknown",
];
const TRAIT_LEVELS: [&str; 3] = ["agree", "differ", "unknown"];
/// Non-identifying attributes compared as agree / differ / unknown.
pub const TRAITS: [&str; 4] = ["sex", "nationality group", "household role", "admin status"];
const PATTERNS: usize = IDENTITY_LEVELS.len() * YEAR_LEVELS.len();
/// Identity levels up to this one agree on names and at least the day and month of birth.
const STRONG_DATE_LEVEL: u8 = 4;
/// The level of a surname token and exact date whose first names start differently: twins?
const TWINS_LEVEL: u8 = 10;
/// Which evidence may only count against a merge at one identity level.
#[derive(Clone, Copy, Default)]
struct AgainstOnly {
    pattern: bool,
    traits: bool,
    rare_value: bool,
}

/// Levels where the keys contradict each other the way relatives do (twins: same surname and
/// date, other first name; father and son: same names, other exact date). EM treats the other
/// evidence as independent of the keys, which fails for relatives:
/// - a rare family name is shared by relatives too, so a rare deciding value adds nothing at
///   any of these levels;
/// - twins share every household trait, so agreeing traits add nothing at [`TWINS_LEVEL`] (a
///   date typo's traits still count: typos are common, relatives with the same names are not);
/// - names alike within a decade with two different real dates, the weakest contradiction, is
///   never evidence for a merge, whatever a small sample makes EM believe.
fn against_only(identity: u8) -> AgainstOnly {
    match identity {
        TWINS_LEVEL => AgainstOnly {
            traits: true,
            rare_value: true,
            ..AgainstOnly::default()
        },
        DATES_DIFFER_LEVEL => AgainstOnly {
            rare_value: true,
            ..AgainstOnly::default()
        },
        DECADE_DATES_DIFFER_LEVEL => AgainstOnly {
            pattern: true,
            traits: true,
            rare_value: true,
        },
        _ => AgainstOnly::default(),
    }
}

/// A weight, kept only where it counts against a merge when `against_only`.
fn capped(weight: f64, against_only: bool) -> f64 {
    if against_only {
        weight.min(0.0)
    } else {
        weight
    }
}
/// Names or a token and the year agree, two exact dates differ. Pooled on purpose: split off,
/// names + year learnt a positive weight from typo-ridden data and joined two namesakes born
/// the same year (see docs/linkage.md).
const DATES_DIFFER_LEVEL: u8 = 15;
const DECADE_DATES_DIFFER_LEVEL: u8 = 17;
/// No key agrees.
const NO_KEY_LEVEL: u8 = 18;
/// The level of names + day and month with another year (nfm).
const NAMES_DAY_MONTH_LEVEL: usize = 4;
/// Names, year and the month or the day agree, the other differs: one digit typed wrong.
const NAMES_YEAR_PART_LEVEL: u8 = 5;
/// A first-name token and the date agree (tfd), the surnames do not.
const FIRST_TOKEN_DATE_LEVEL: u8 = 8;
/// Names and the birth year agree (nfy), not two differing exact dates.
const NAMES_YEAR_LEVEL: u8 = 12;
/// Names and the decade agree (nfd), not two differing exact dates.
const NAMES_DECADE_LEVEL: u8 = 16;

/// Linkage parameters (`[linkage]` in hub.toml).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkParams {
    /// Minimum match weight (log2 posterior odds) to link two records; 0 means even odds, −1
    /// one chance in three.
    pub threshold: f64,
    /// Minimum match weight for a pair whose keys contradict each other the way relatives and
    /// namesakes do (two different exact dates, other first initials): never below `threshold`.
    pub contradiction_threshold: f64,
    /// Extra evidence (log2) needed for two records of the same operator.
    pub same_operator_penalty: f64,
    /// Key values held by more records than this are not used for blocking.
    pub max_block: usize,
    /// Largest number of records in one person.
    pub max_cluster: usize,
    /// Largest spread of known birth years within one person.
    pub max_year_span: i32,
    /// EM iterations.
    pub em_iterations: usize,
    /// Largest term-frequency adjustment, in log2 units, either way.
    pub tf_cap: f64,
    /// Weigh the other members of two households that share a person as one family seen twice.
    pub household_context: bool,
}

impl LinkParams {
    /// The weight a pair must reach to be linked: a contradiction needs at least
    /// `contradiction_threshold`; a pair sharing only values that count for nothing (no key
    /// level: a surname end or token with two different first names) is never linked directly,
    /// whatever the traits add — those are what strangers share.
    pub fn threshold_for(&self, c: &Comparison) -> f64 {
        if c.identity == NO_KEY_LEVEL {
            f64::INFINITY
        } else {
            self.evidence_threshold_for(c)
        }
    }

    /// The weight a pair must reach when something besides its keys brought it (the household
    /// context): `threshold`, or `contradiction_threshold` for a contradiction.
    pub fn evidence_threshold_for(&self, c: &Comparison) -> f64 {
        if is_contradiction(c.identity) {
            self.contradiction_floor()
        } else {
            self.threshold
        }
    }

    /// What a contradicting pair must reach: `contradiction_threshold`, never below `threshold`.
    pub fn contradiction_floor(&self) -> f64 {
        self.threshold.max(self.contradiction_threshold)
    }
}

/// Identity levels where the keys contradict each other the way relatives and namesakes do.
fn is_contradiction(identity: u8) -> bool {
    matches!(
        identity,
        TWINS_LEVEL | DATES_DIFFER_LEVEL | DECADE_DATES_DIFFER_LEVEL
    )
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            threshold: -1.0,
            contradiction_threshold: 0.0,
            same_operator_penalty: 4.0,
            max_block: 50,
            max_cluster: 24,
            max_year_span: 2,
            em_iterations: 40,
            tf_cap: 4.0,
            household_context: true,
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
    /// Household reference (per operator), if any.
    pub household_ref: Option<String>,
    /// 'M' or 'F'.
    pub sex: Option<char>,
    /// Birth year.
    pub birth_year: Option<i32>,
    /// The birth date behind the keys is a real full date (quality `exact`).
    pub exact_date: bool,
    /// Nationality group, household role and administrative status codes.
    pub traits: [Option<String>; 3],
    /// The stored match keys.
    pub keys: Vec<NodeKey>,
}

/// One stored match key as linkage holds it: its family (index into [`FAMILIES`]) and its
/// value as a number (the hub's values are 128 random bits: compared and hashed as integers,
/// not as text, and held without an allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// Index into [`FAMILIES`].
    pub family: u8,
    /// The stored value.
    pub value: u128,
}

impl NodeKey {
    /// A stored (family code, value) pair; `None` for a family this hub does not compare.
    pub fn parse(family: &str, value: &str) -> Option<NodeKey> {
        Some(NodeKey {
            family: family_index(family)? as u8,
            value: value_bits(value),
        })
    }

    /// The family code.
    pub fn code(&self) -> &'static str {
        FAMILIES[usize::from(self.family)]
    }

    /// The value as stored (base64url of its 128 bits).
    pub fn value_text(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.value.to_be_bytes())
    }
}

/// The 128 bits of a stored value (base64url of 16 bytes, as the hub's second keyed pass
/// writes it); any other text (hand-built test data) is represented by a digest of it.
pub fn value_bits(value: &str) -> u128 {
    use base64::Engine as _;
    let mut bytes = [0u8; 18];
    if value.len() == 22 {
        if let Ok(16) =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(value, &mut bytes)
        {
            let mut exact = [0u8; 16];
            exact.copy_from_slice(&bytes[..16]);
            return u128::from_be_bytes(exact);
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(first)
}

/// Attribute codes a node compares, as named in the stored record's JSON.
const TRAIT_FIELDS: [&str; 3] = ["nat", "role", "adm"];

/// The compact profile stored beside a record at ingestion: what linkage reads of it, in one
/// field (tab-separated: sex, birth year, exact-date flag, the three trait codes, then
/// space-separated `family:value` keys). Codes and keyed values hold no tab, space or colon.
pub fn profile(attributes: &serde_json::Value, keys: &[(&str, String)]) -> String {
    let text = |field: &str| attributes[field].as_str().unwrap_or("").to_string();
    profile_line(
        text("sex"),
        attributes["by"].as_i64(),
        attributes["dq"].as_str() == Some("exact"),
        TRAIT_FIELDS.iter().map(|f| text(f)),
        keys.iter().map(|(f, v)| format!("{f}:{v}")),
    )
}

/// The profile's one layout, written from stored attributes or from a node.
fn profile_line(
    sex: String,
    birth_year: Option<i64>,
    exact_date: bool,
    traits: impl Iterator<Item = String>,
    keys: impl Iterator<Item = String>,
) -> String {
    let mut out = vec![
        sex,
        birth_year.map(|y| y.to_string()).unwrap_or_default(),
        u8::from(exact_date).to_string(),
    ];
    out.extend(traits);
    out.push(keys.collect::<Vec<_>>().join(" "));
    out.join("\t")
}

/// Adds a stored profile to a node: facts already known are kept (a record's months merge),
/// keys are added once.
pub fn add_profile(node: &mut Node, profile: &str) {
    let mut parts = profile.split('\t');
    let mut next = || parts.next().filter(|s| !s.is_empty());
    let sex = next().and_then(|s| s.chars().next());
    let year = next().and_then(|y| y.parse().ok());
    let exact = next() == Some("1");
    node.sex = node.sex.or(sex);
    node.birth_year = node.birth_year.or(year);
    node.exact_date |= exact;
    for slot in node.traits.iter_mut() {
        let value = next();
        if slot.is_none() {
            *slot = value.map(str::to_string);
        }
    }
    // A record's later months repeat most keys: only those are looked up, in the sorted keys
    // of the earlier months (a linear scan per key made loading quadratic in the key count).
    let had = node.keys.len();
    node.keys.sort_unstable();
    for pair in next().unwrap_or("").split(' ') {
        let Some((family, value)) = pair.split_once(':') else {
            continue;
        };
        let Some(key) = NodeKey::parse(family, value) else {
            continue;
        };
        if node.keys[..had].binary_search(&key).is_err() {
            node.keys.push(key);
        }
    }
}

/// One node as a line (operator, record reference, household, then its profile, tab-separated):
/// what the linkage bench dumps so that parameters can be tried again without the agents.
pub fn node_line(node: &Node) -> String {
    let household = node.household_ref.as_deref().unwrap_or("");
    format!(
        "{}\t{}\t{household}\t{}",
        node.operator,
        node.record_ref,
        node_profile(node)
    )
}

/// A node's merged months as one profile (what [`add_profile`] reads back).
pub fn node_profile(node: &Node) -> String {
    profile_line(
        node.sex.map(String::from).unwrap_or_default(),
        node.birth_year.map(i64::from),
        node.exact_date,
        node.traits.iter().map(|t| t.clone().unwrap_or_default()),
        node.keys
            .iter()
            .map(|k| format!("{}:{}", k.code(), k.value_text())),
    )
}

/// Reads a line written by [`node_line`].
pub fn node_from_line(line: &str) -> Option<Node> {
    let mut parts = line.splitn(4, '\t');
    let mut node = Node {
        operator: parts.next()?.to_string(),
        record_ref: parts.next()?.to_string(),
        household_ref: Some(parts.next()?.to_string()).filter(|h| !h.is_empty()),
        ..Node::default()
    };
    add_profile(&mut node, parts.next()?);
    Some(node)
}

/// The agreement pattern of one candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Index into [`IDENTITY_LEVELS`].
    pub identity: u8,
    /// Index into the year levels.
    pub year: u8,
    /// Agree / differ / unknown for each of [`TRAITS`].
    pub traits: [u8; 4],
    /// Nodes holding the value that decided the identity level (for term frequency).
    pub value_count: u32,
    /// Both records come from one operator.
    pub same_operator: bool,
}

impl Comparison {
    fn pattern(&self) -> usize {
        self.identity as usize * YEAR_LEVELS.len() + self.year as usize
    }
}

/// Match and non-match probabilities of every level, estimated by EM.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Model {
    /// Prior share of candidate pairs that are matches.
    pub lambda: f64,
    /// m and u per identity × year pattern.
    pub pattern_m: Vec<f64>,
    /// u per identity × year pattern.
    pub pattern_u: Vec<f64>,
    /// m per trait level.
    pub trait_m: [[f64; 3]; 4],
    /// u per trait level.
    pub trait_u: [[f64; 3]; 4],
    /// Term-frequency baseline of each identity level: the harmonic mean, over its pairs
    /// weighted by EM's posterior of non-match, of the deciding value's node count (field name
    /// kept for the models stored by earlier runs, which held an arithmetic mean).
    pub level_mean_count: Vec<f64>,
    /// Candidate pairs the model was fitted on.
    pub pairs: usize,
}

/// One weight contribution, for `linkage explain`.
#[derive(Debug, Clone, Serialize)]
pub struct Contribution {
    /// What was compared.
    pub what: String,
    /// The level observed.
    pub level: String,
    /// log2(m/u) (or the adjustment).
    pub weight: f64,
}

impl Model {
    fn pattern_weight(&self, c: &Comparison) -> f64 {
        let w = (self.pattern_m[c.pattern()] / self.pattern_u[c.pattern()]).log2();
        capped(w, against_only(c.identity).pattern)
    }

    fn tf_adjustment(&self, c: &Comparison, p: &LinkParams) -> f64 {
        let mean = self.level_mean_count[c.identity as usize];
        if c.value_count == 0 || mean <= 0.0 {
            return 0.0;
        }
        let w = (mean / f64::from(c.value_count))
            .log2()
            .clamp(-p.tf_cap, p.tf_cap);
        capped(w, against_only(c.identity).rare_value)
    }

    /// The match weight of a pair: log2 posterior odds.
    pub fn weight(&self, c: &Comparison, p: &LinkParams) -> f64 {
        let mut w = (self.lambda / (1.0 - self.lambda)).log2() + self.pattern_weight(c);
        for t in 0..TRAITS.len() {
            w += self.trait_weight(c, t);
        }
        w += self.tf_adjustment(c, p);
        if c.same_operator {
            w -= p.same_operator_penalty;
        }
        w
    }

    /// The weight of one trait's agreement level.
    fn trait_weight(&self, c: &Comparison, t: usize) -> f64 {
        let l = c.traits[t] as usize;
        let w = (self.trait_m[t][l] / self.trait_u[t][l]).log2();
        capped(w, against_only(c.identity).traits)
    }

    /// The fitted weights, one line per identity level (log2 m/u by year level, TF baseline of
    /// the deciding value) and per trait: what a developer reads to see what EM learnt.
    pub fn describe(&self) -> String {
        let mut out = format!("MODEL lambda {:.4} pairs {}\n", self.lambda, self.pairs);
        for (l, name) in IDENTITY_LEVELS.iter().enumerate() {
            let w: Vec<String> = (0..YEAR_LEVELS.len())
                .map(|y| {
                    let k = l * YEAR_LEVELS.len() + y;
                    format!("{:+.1}", (self.pattern_m[k] / self.pattern_u[k]).log2())
                })
                .collect();
            out += &format!(
                "  {name:<55} {} TF baseline {:.1}\n",
                w.join(" "),
                self.level_mean_count[l]
            );
        }
        for (t, name) in TRAITS.iter().enumerate() {
            let w: Vec<String> = (0..TRAIT_LEVELS.len())
                .map(|l| format!("{:+.1}", (self.trait_m[t][l] / self.trait_u[t][l]).log2()))
                .collect();
            out += &format!("  {name:<55} {}\n", w.join(" "));
        }
        out
    }

    /// The weight of a pair, term by term.
    pub fn explain(&self, c: &Comparison, p: &LinkParams) -> Vec<Contribution> {
        let mut out = vec![
            Contribution {
                what: "prior".into(),
                level: format!("{:.4} of candidate pairs match", self.lambda),
                weight: (self.lambda / (1.0 - self.lambda)).log2(),
            },
            Contribution {
                what: "keys and birth year".into(),
                level: format!(
                    "{}; {}",
                    IDENTITY_LEVELS[c.identity as usize], YEAR_LEVELS[c.year as usize]
                ),
                weight: self.pattern_weight(c),
            },
        ];
        for (t, &level) in c.traits.iter().enumerate() {
            let l = level as usize;
            out.push(Contribution {
                what: TRAITS[t].into(),
                level: TRAIT_LEVELS[l].into(),
                weight: self.trait_weight(c, t),
            });
        }
        out.push(Contribution {
            what: "term frequency".into(),
            level: format!("deciding value held by {} records", c.value_count),
            weight: self.tf_adjustment(c, p),
        });
        if c.same_operator {
            out.push(Contribution {
                what: "same operator".into(),
                level: "both records from one operator".into(),
                weight: -p.same_operator_penalty,
            });
        }
        out
    }
}

/// Nodes with their keys interned: (value id, family index) sorted by value id.
struct Indexed {
    keys: Vec<Vec<(u32, u8)>>,
    counts: Vec<u32>,
    operators: Vec<u32>,
    /// The node has a key that needs a first name (its first name is known).
    has_first: Vec<bool>,
    /// Trait codes as small numbers (0: unknown), so a pair compares integers, not strings.
    traits: Vec<[u32; 3]>,
    /// Household as a number unique across operators (0: none).
    households: Vec<u32>,
}

fn family_index(code: &str) -> Option<usize> {
    FAMILIES.iter().position(|f| *f == code)
}

fn domain(family: usize) -> usize {
    match family {
        TFD => TSD,
        TFY => TSY,
        f => f,
    }
}

/// Holders of each keyed value across every stored record, by (domain, value): what an
/// incremental run blocks on and weighs rare values with, instead of counting the few nodes it
/// reads.
pub type ValueCounts = FxHashMap<(usize, u128), u32>;

/// The [`ValueCounts`] entry a key counts under (families of one domain share values).
pub fn count_key(key: &NodeKey) -> (usize, u128) {
    (domain(usize::from(key.family)), key.value)
}

/// The holders among `nodes` of each value a fresh node holds; a value in `common` (too common
/// to follow, by value bits) counts its stored key rows instead. When `nodes` hold every stored
/// holder of the other fresh values, these are the counts a full run would see.
pub fn fresh_value_counts(
    nodes: &[Node],
    fresh: &[bool],
    common: &FxHashMap<u128, u32>,
) -> ValueCounts {
    // The fresh nodes' values first, then their holders among every node: a map of the fresh
    // values only, not of every value read.
    let mut counts: ValueCounts = nodes
        .iter()
        .zip(fresh)
        .filter(|(_, f)| **f)
        .flat_map(|(n, _)| n.keys.iter().map(|k| (count_key(k), 0)))
        .collect();
    let mut mine: Vec<(usize, u128)> = Vec::new();
    for n in nodes {
        mine.clear();
        mine.extend(n.keys.iter().map(count_key));
        mine.sort_unstable();
        mine.dedup();
        for k in &mine {
            if let Some(count) = counts.get_mut(k) {
                *count += 1;
            }
        }
    }
    for (key, count) in counts.iter_mut() {
        if let Some(&rows) = common.get(&key.1) {
            *count = rows;
        }
    }
    counts
}

fn index(nodes: &[Node], global: Option<&ValueCounts>) -> Indexed {
    index_of(nodes, global, false)
}

/// [`index`]; with `counted_only`, only the values in `global` are indexed (an incremental
/// run's first weighing, where `global` holds the fresh records' values: a pair with a fresh
/// record can agree on no other value, and indexing the read records' other values was most
/// of that weighing).
fn index_of(nodes: &[Node], global: Option<&ValueCounts>, counted_only: bool) -> Indexed {
    let only = global.filter(|_| counted_only);
    let key_total: usize = match only {
        Some(g) => g.len() * 2,
        None => nodes.iter().map(|n| n.keys.len()).sum(),
    };
    // Most values are held by one or two nodes: reserving avoids rehashing millions of entries.
    let mut values: FxHashMap<(usize, u128), u32> =
        FxHashMap::with_capacity_and_hasher(key_total / 2, Default::default());
    let mut operator_ids: HashMap<&str, u32> = HashMap::new();
    let mut trait_ids: FxHashMap<&str, u32> = FxHashMap::default();
    let mut household_ids: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    let mut traits = Vec::with_capacity(nodes.len());
    let mut households = Vec::with_capacity(nodes.len());
    let mut counts: Vec<u32> = Vec::new();
    let mut keys = Vec::with_capacity(nodes.len());
    let mut operators = Vec::with_capacity(nodes.len());
    let mut has_first = Vec::with_capacity(nodes.len());
    for n in nodes {
        let next = operator_ids.len() as u32;
        operators.push(*operator_ids.entry(n.operator.as_str()).or_insert(next));
        traits.push(n.traits.each_ref().map(|t| {
            t.as_deref().map_or(0, |t| {
                let next = trait_ids.len() as u32 + 1;
                *trait_ids.entry(t).or_insert(next)
            })
        }));
        households.push(n.household_ref.as_deref().map_or(0, |h| {
            let next = household_ids.len() as u32 + 1;
            *household_ids
                .entry((n.operator.as_str(), h))
                .or_insert(next)
        }));
        let mut mine: Vec<(u32, u8)> = Vec::with_capacity(n.keys.len());
        for k in &n.keys {
            let fi = usize::from(k.family);
            let value = (domain(fi), k.value);
            if only.is_some_and(|g| !g.contains_key(&value)) {
                continue;
            }
            let next = values.len() as u32;
            let id = *values.entry(value).or_insert(next);
            if id as usize == counts.len() {
                counts.push(0);
            }
            mine.push((id, fi as u8));
        }
        mine.sort_unstable();
        mine.dedup();
        // From every key, whether indexed or not.
        has_first.push(
            n.keys
                .iter()
                .any(|k| NEED_FIRST_NAME.contains(&usize::from(k.family))),
        );
        let mut last = u32::MAX;
        for &(id, _) in &mine {
            if id != last {
                counts[id as usize] += 1;
                last = id;
            }
        }
        keys.push(mine);
    }
    if let Some(global) = global {
        for (key, &id) in &values {
            if let Some(&n) = global.get(key) {
                counts[id as usize] = n.max(counts[id as usize]);
            }
        }
    }
    Indexed {
        keys,
        counts,
        operators,
        has_first,
        traits,
        households,
    }
}

fn trait_level<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> u8 {
    match (a, b) {
        (Some(x), Some(y)) if x == y => 0,
        (Some(_), Some(_)) => 1,
        _ => 2,
    }
}

/// Agree / differ / unknown of two interned codes (0: unknown).
fn code_level(a: u32, b: u32) -> u8 {
    match (a, b) {
        (0, _) | (_, 0) => 2,
        (x, y) if x == y => 0,
        _ => 1,
    }
}

fn compare(nodes: &[Node], ix: &Indexed, i: usize, j: usize) -> Comparison {
    let (a, b) = (&ix.keys[i], &ix.keys[j]);
    // Per family: the smallest count of a value shared in that family (0 = no agreement).
    let mut agree = [0u32; CROSS_YEAR + 1];
    let (mut x, mut y) = (0, 0);
    while x < a.len() && y < b.len() {
        let (va, vb) = (a[x].0, b[y].0);
        if va < vb {
            x += 1;
        } else if vb < va {
            y += 1;
        } else {
            // All entries with this value on both sides (a token may carry both tags).
            let (x_end, y_end) = (
                x + a[x..].iter().take_while(|k| k.0 == va).count(),
                y + b[y..].iter().take_while(|k| k.0 == va).count(),
            );
            let count = ix.counts[va as usize];
            for &(_, fa) in &a[x..x_end] {
                for &(_, fb) in &b[y..y_end] {
                    let f = match (fa as usize, fb as usize) {
                        (fa, fb) if fa == fb => fa,
                        (TSY | TFY, _) => CROSS_YEAR,
                        _ => CROSS,
                    };
                    if agree[f] == 0 || count < agree[f] {
                        agree[f] = count;
                    }
                }
            }
            x = x_end;
            y = y_end;
        }
    }
    let (na, nb) = (&nodes[i], &nodes[j]);
    let both_exact = na.exact_date && nb.exact_date;
    let both_first = ix.has_first[i] && ix.has_first[j];
    // Token + initial + year keys agree: the first names at least start alike.
    let same_initial = agree[TSY] > 0 || agree[TFY] > 0 || agree[CROSS_YEAR] > 0;
    let (identity, value_count) = if agree[NDF] > 0 {
        (0, agree[NDF])
    } else if agree[PDF] > 0 {
        (1, agree[PDF])
    } else if agree[TSD] > 0 && agree[TFD] > 0 {
        (2, agree[TSD].min(agree[TFD]))
    } else if agree[NDX] > 0 {
        (3, agree[NDX])
    } else if agree[NFM] > 0 {
        (4, agree[NFM])
    } else if let Some(count) = [agree[NYM], agree[NYD]]
        .into_iter()
        .filter(|&c| c > 0)
        .min()
    {
        (NAMES_YEAR_PART_LEVEL, count)
    } else if agree[CROSS] > 0 {
        (6, agree[CROSS])
    } else if agree[TSD] > 0 {
        // Both first names known (with the date) yet none agrees: a misspelt first name when
        // they start alike, else twins or siblings.
        let level = match (both_first, same_initial) {
            (false, _) => 7,
            (true, true) => 9,
            (true, false) => TWINS_LEVEL,
        };
        (level, agree[TSD])
    } else if agree[TFD] > 0 {
        (FIRST_TOKEN_DATE_LEVEL, agree[TFD])
    } else if agree[DSF] > 0 && !both_first {
        // A surname end or a surname token alone is evidence only when a first name is
        // missing: with both first names known and different, it is what strangers share.
        (11, agree[DSF])
    } else if agree[NFY] > 0 {
        (
            if both_exact {
                DATES_DIFFER_LEVEL
            } else {
                NAMES_YEAR_LEVEL
            },
            agree[NFY],
        )
    } else if let Some(count) = [agree[TSY], agree[TFY], agree[CROSS_YEAR]]
        .into_iter()
        .filter(|&c| c > 0)
        .min()
    {
        (if both_exact { DATES_DIFFER_LEVEL } else { 13 }, count)
    } else if agree[SNY] > 0 && !both_first {
        (if both_exact { DATES_DIFFER_LEVEL } else { 14 }, agree[SNY])
    } else if agree[NFD] > 0 {
        (
            if both_exact {
                DECADE_DATES_DIFFER_LEVEL
            } else {
                NAMES_DECADE_LEVEL
            },
            agree[NFD],
        )
    } else {
        (NO_KEY_LEVEL, 0)
    };
    let year = match (na.birth_year, nb.birth_year) {
        (Some(p), Some(q)) if p == q => 0,
        (Some(p), Some(q)) if (p - q).abs() == 1 => 1,
        (Some(_), Some(_)) => 2,
        _ => 3,
    };
    Comparison {
        identity,
        year,
        traits: [
            trait_level(&na.sex, &nb.sex),
            code_level(ix.traits[i][0], ix.traits[j][0]),
            code_level(ix.traits[i][1], ix.traits[j][1]),
            code_level(ix.traits[i][2], ix.traits[j][2]),
        ],
        value_count,
        same_operator: ix.operators[i] == ix.operators[j],
    }
}

/// Candidate pairs (i < j) from the blocks, deduplicated and sorted.
fn candidate_pairs(ix: &Indexed, max_block: usize) -> Vec<(u32, u32)> {
    candidate_pairs_of(ix, max_block, None)
}

/// Candidate pairs as [`candidate_pairs`], only those with a member in `with` when given (an
/// incremental run's fresh nodes: pairs among the records read are never decided there).
fn candidate_pairs_of(ix: &Indexed, max_block: usize, with: Option<&[bool]>) -> Vec<(u32, u32)> {
    let mut blocks: Vec<Vec<u32>> = vec![Vec::new(); ix.counts.len()];
    for (n, keys) in ix.keys.iter().enumerate() {
        let mut last = u32::MAX;
        for &(id, _) in keys {
            if id != last && (2..=max_block as u32).contains(&ix.counts[id as usize]) {
                blocks[id as usize].push(n as u32);
            }
            last = id;
        }
    }
    let mut pairs: Vec<u64> = Vec::new();
    for members in blocks.iter().filter(|m| m.len() > 1) {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if with.is_none_or(|w| w[i as usize] || w[j as usize]) {
                    pairs.push((u64::from(i) << 32) | u64::from(j));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect()
}

/// The comparisons of all candidate pairs, on every core: the largest share of linking time.
fn compare_all(nodes: &[Node], ix: &Indexed, pairs: &[(u32, u32)]) -> Vec<Comparison> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = pairs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(i, j)| compare(nodes, ix, i as usize, j as usize))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(pairs.len());
        for part in parts {
            // A panic in a worker is a bug in `compare`: surface it where it happened.
            all.extend(part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all
    })
}

/// Domain prior of the match probability of an identity × year pattern: EM's starting point,
/// and what a pattern seen too rarely to learn from falls back to.
fn pattern_guess(pattern: usize) -> f64 {
    const IDENTITY: [f64; IDENTITY_LEVELS.len()] = [
        0.99, 0.97, 0.95, 0.9, 0.7, 0.8, 0.8, 0.6, 0.6, 0.4, 0.05, 0.4, 0.3, 0.3, 0.15, 0.05, 0.2,
        0.02, 0.01,
    ];
    const YEAR: [f64; 4] = [1.0, 0.6, 0.05, 0.8];
    let identity = pattern / YEAR_LEVELS.len();
    // Names + day and month (nfm) already says the years differ: a typo or a digit swap.
    let year = if identity == NAMES_DAY_MONTH_LEVEL {
        1.0
    } else {
        YEAR[pattern % YEAR_LEVELS.len()]
    };
    (IDENTITY[identity] * year).clamp(0.001, 0.999)
}

/// Prior guess of the match probability of a comparison: EM's starting point only.
fn initial_guess(c: &Comparison) -> f64 {
    const SEX: [f64; 3] = [1.0, 0.02, 0.8];
    pattern_guess(c.pattern()) * SEX[c.traits[0] as usize]
}

/// Estimates the model by EM on the histogram of comparison patterns.
pub fn estimate(comparisons: &[Comparison], p: &LinkParams) -> Model {
    // Identical patterns (ignoring term frequency) are pooled: EM runs on the histogram.
    let mut histogram: HashMap<(usize, [u8; 4]), (f64, f64)> = HashMap::new();
    for c in comparisons {
        let e = histogram
            .entry((c.pattern(), c.traits))
            .or_insert((0.0, initial_guess(c)));
        e.0 += 1.0;
    }
    let mut cells: Vec<((usize, [u8; 4]), f64, f64)> =
        histogram.into_iter().map(|(k, (n, g))| (k, n, g)).collect();
    // A fixed order: floating-point sums then do not depend on the hash map's random order,
    // so the same records always give the same weights and the same persons.
    cells.sort_unstable_by_key(|c| c.0);
    let mut posterior: Vec<f64> = cells.iter().map(|c| c.2).collect();
    let total: f64 = cells.iter().map(|c| c.1).sum::<f64>().max(1.0);
    // Pseudo-counts keep every probability positive. For a pattern they follow its domain prior
    // (a Beta prior on its match share), so a pattern seen too rarely to learn from keeps the
    // odds the domain gives it, not the odds of the average candidate pair; for the attributes
    // they are shared in proportion to the classes, which leaves a rare level near weight 0.

    const SMOOTH: f64 = 2.0;
    let mut model = Model {
        lambda: 0.5,
        pattern_m: vec![0.0; PATTERNS],
        pattern_u: vec![0.0; PATTERNS],
        trait_m: [[0.0; 3]; 4],
        trait_u: [[0.0; 3]; 4],
        // Set from EM's posteriors once it has converged (term frequency plays no part in EM).
        level_mean_count: Vec::new(),
        pairs: comparisons.len(),
    };
    for _ in 0..p.em_iterations.max(1) {
        // M step.
        let share = model.lambda;
        let (sm, su) = (SMOOTH * share, SMOOTH * (1.0 - share));
        let mut pm: Vec<f64> = (0..PATTERNS).map(|k| SMOOTH * pattern_guess(k)).collect();
        let mut pu: Vec<f64> = (0..PATTERNS)
            .map(|k| SMOOTH * (1.0 - pattern_guess(k)))
            .collect();
        let mut tm = [[sm; 3]; 4];
        let mut tu = [[su; 3]; 4];
        let mut matches = 0.0;
        for (((pattern, traits), n, _), &q) in cells.iter().zip(&posterior) {
            let (m, u) = (n * q, n * (1.0 - q));
            matches += m;
            pm[*pattern] += m;
            pu[*pattern] += u;
            for (t, &l) in traits.iter().enumerate() {
                tm[t][l as usize] += m;
                tu[t][l as usize] += u;
            }
        }
        let normalise = |v: &mut [f64]| {
            let s: f64 = v.iter().sum();
            v.iter_mut().for_each(|x| *x /= s);
        };
        normalise(&mut pm);
        normalise(&mut pu);
        tm.iter_mut().for_each(|t| normalise(t));
        tu.iter_mut().for_each(|t| normalise(t));
        model.lambda = (matches / total).clamp(1e-6, 1.0 - 1e-6);
        model.pattern_m = pm;
        model.pattern_u = pu;
        model.trait_m = tm;
        model.trait_u = tu;
        // E step.
        for (((pattern, traits), _, _), q) in cells.iter().zip(posterior.iter_mut()) {
            let mut odds = model.lambda / (1.0 - model.lambda) * model.pattern_m[*pattern]
                / model.pattern_u[*pattern];
            for (t, &l) in traits.iter().enumerate() {
                odds *= model.trait_m[t][l as usize] / model.trait_u[t][l as usize];
            }
            *q = odds / (1.0 + odds);
        }
    }
    model.level_mean_count = tf_baselines(comparisons, &model);
    model
}

/// The term-frequency baseline of each identity level: the count a deciding value would have
/// if agreeing carried exactly the level's u. Two non-matching records agree on a value held
/// by k records about k² times as often, so the level's u is the u of a value held by the
/// harmonic mean of k over its non-matching pairs (weighted by EM's posterior of non-match);
/// an arithmetic mean over pairs would sit far above it for skewed counts and credit every
/// pair of a weak level with evidence it does not have.
fn tf_baselines(comparisons: &[Comparison], model: &Model) -> Vec<f64> {
    let mut sums = vec![(0.0f64, 0.0f64); IDENTITY_LEVELS.len()];
    let prior = model.lambda / (1.0 - model.lambda);
    for c in comparisons.iter().filter(|c| c.value_count > 0) {
        let k = c.pattern();
        let mut odds = prior * model.pattern_m[k] / model.pattern_u[k];
        for (t, &l) in c.traits.iter().enumerate() {
            odds *= model.trait_m[t][l as usize] / model.trait_u[t][l as usize];
        }
        let non_match = 1.0 / (1.0 + odds);
        let s = &mut sums[c.identity as usize];
        s.0 += non_match;
        s.1 += non_match / f64::from(c.value_count);
    }
    sums.iter()
        .map(|&(w, inv)| if inv > 0.0 { w / inv } else { 0.0 })
        .collect()
}

/// Why a pair above the threshold was not merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Veto {
    /// The person would exceed [`LinkParams::max_cluster`] records.
    ClusterSize,
    /// The person would hold both sexes.
    Sexes,
    /// The person's birth years would spread over more than [`LinkParams::max_year_span`].
    YearSpan,
    /// Two records one operator lists in the same household would become one person.
    Household,
    /// The pairs across the two persons, taken together, do not favour one person.
    Evidence,
}

/// The outcome of linking: a person per node, the model and the links made.
#[derive(Debug, Clone)]
pub struct Linked {
    /// Person index per node (0-based, dense, in order of first appearance).
    pub person: Vec<usize>,
    /// The estimated model.
    pub model: Model,
    /// Match weight of every candidate pair above the threshold, with the veto that kept its
    /// records apart (`None`: merged).
    pub links: Vec<(u32, u32, f64, Option<Veto>)>,
    /// Weights of all candidate pairs (for the score distribution).
    pub weights: Vec<f64>,
}

/// Links nodes into persons; returns a person index per node (0-based, dense).
pub fn link(nodes: &[Node], p: &LinkParams) -> Vec<usize> {
    link_detailed(nodes, p).person
}

/// The comparison of two nodes of a slice (for `linkage explain`).
pub fn compare_nodes(nodes: &[Node], i: usize, j: usize) -> Comparison {
    compare(nodes, &index(nodes, None), i, j)
}

/// The comparisons of many pairs of one slice, and whether each pair shares a value that is
/// blocked on (is a candidate pair): what the linkage bench's diagnosis needs.
pub fn compare_pairs(
    nodes: &[Node],
    pairs: &[(usize, usize)],
    p: &LinkParams,
) -> Vec<(Comparison, bool)> {
    let ix = index(nodes, None);
    let blocked = |id: u32| (2..=p.max_block as u32).contains(&ix.counts[id as usize]);
    pairs
        .iter()
        .map(|&(i, j)| {
            let candidate = ix.keys[i]
                .iter()
                .any(|a| blocked(a.0) && ix.keys[j].iter().any(|b| b.0 == a.0));
            (compare(nodes, &ix, i, j), candidate)
        })
        .collect()
}

/// How one key family compares between two records (for `linkage explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAgreement {
    /// A value of the family is shared.
    Agree,
    /// Both records carry the family, with no value in common.
    Differ,
    /// One side or both lack the family (name part or date not known).
    Absent,
}

/// The agreement of every key family between two records; `tsd`/`tfd` and `tsy`/`tfy` share a
/// domain, so a value shared across the two tags (swapped name fields) counts as agreeing.
pub fn key_agreement(a: &Node, b: &Node) -> Vec<(&'static str, KeyAgreement)> {
    let values = |n: &Node, fi: usize| -> Vec<u128> {
        n.keys
            .iter()
            .filter(|k| domain(usize::from(k.family)) == domain(fi))
            .map(|k| k.value)
            .collect()
    };
    FAMILIES
        .iter()
        .enumerate()
        .map(|(fi, code)| {
            let own = |n: &Node| n.keys.iter().any(|k| k.code() == *code);
            let agreement = if !own(a) || !own(b) {
                KeyAgreement::Absent
            } else {
                let (va, vb) = (values(a, fi), values(b, fi));
                if va.iter().any(|v| vb.contains(v)) {
                    KeyAgreement::Agree
                } else {
                    KeyAgreement::Differ
                }
            };
            (*code, agreement)
        })
        .collect()
}

/// Every candidate pair of node `i` (records sharing a blocking key), with its comparison.
pub fn candidates_of(nodes: &[Node], i: usize, p: &LinkParams) -> Vec<(usize, Comparison)> {
    let ix = index(nodes, None);
    let mine: HashSet<u32> = ix.keys[i]
        .iter()
        .map(|k| k.0)
        .filter(|id| (2..=p.max_block as u32).contains(&ix.counts[*id as usize]))
        .collect();
    (0..nodes.len())
        .filter(|&j| j != i && ix.keys[j].iter().any(|k| mine.contains(&k.0)))
        .map(|j| (j, compare(nodes, &ix, i, j)))
        .collect()
}

/// Links nodes and keeps the model and the weighted links.
pub fn link_detailed(nodes: &[Node], p: &LinkParams) -> Linked {
    link_inner(nodes, None, p)
}

/// An incremental run: nodes that held one person in the last run (`seeds`, its id) start as one
/// cluster, and only pairs with a node of the new month (`fresh`) are decided, so that earlier
/// decisions stand and new evidence can still join or merge persons. The last full run's model
/// weighs the pairs.
pub fn link_step(nodes: &[Node], step: &Step<'_>, p: &LinkParams) -> Linked {
    link_inner(nodes, Some(step), p)
}

/// What an incremental run knows beyond the nodes it read.
pub struct Step<'a> {
    /// The node has a record in a batch received since the last run.
    pub fresh: &'a [bool],
    /// The node's person id in the last run, if any: persons start whole.
    pub seeds: &'a [Option<i64>],
    /// The model the last full run estimated on every record (EM on a few nodes would not
    /// represent the territory).
    pub model: &'a Model,
    /// Holders of the fresh records' values across every stored record.
    pub counts: &'a ValueCounts,
}

/// Nodes that could join a fresh node: those with a pair above the threshold with one (the
/// fresh nodes included). An incremental run reads the whole persons of these only, not of
/// every record that merely shares a common value.
pub fn step_partners(
    nodes: &[Node],
    fresh: &[bool],
    model: &Model,
    counts: &ValueCounts,
    p: &LinkParams,
) -> Vec<bool> {
    let ix = index_of(nodes, Some(counts), true);
    let pairs = candidate_pairs_of(&ix, p.max_block, Some(fresh));
    let comparisons = compare_all(nodes, &ix, &pairs);
    let mut partner = fresh.to_vec();
    for (&(i, j), c) in pairs.iter().zip(&comparisons) {
        if model.weight(c, p) >= p.threshold_for(c) {
            partner[i as usize] = true;
            partner[j as usize] = true;
        }
    }
    partner
}

fn link_inner(nodes: &[Node], step: Option<&Step<'_>>, p: &LinkParams) -> Linked {
    let ix = index(nodes, step.map(|s| s.counts));
    let pairs = candidate_pairs(&ix, p.max_block);
    let comparisons = compare_all(nodes, &ix, &pairs);
    let model = match step {
        Some(step) => step.model.clone(),
        None => estimate(&comparisons, p),
    };
    let weights: Vec<f64> = comparisons.iter().map(|c| model.weight(c, p)).collect();
    let mut scored: Vec<(f64, u32, u32, bool)> = pairs
        .iter()
        .zip(&weights)
        .zip(&comparisons)
        .filter(|((_, w), c)| **w >= p.threshold_for(c))
        .map(|((&(i, j), &w), c)| (w, i, j, c.identity <= STRONG_DATE_LEVEL))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut clusters = Clusters::new(
        nodes,
        &household_apart(nodes, &ix, &pairs, &weights, &comparisons, p),
    );
    if let Some(step) = step {
        let mut first_of: HashMap<i64, usize> = HashMap::new();
        for (i, seed) in step.seeds.iter().enumerate() {
            if let Some(id) = seed {
                let first = *first_of.entry(*id).or_insert(i);
                clusters.join(first, i);
            }
        }
        scored.retain(|&(_, i, j, _)| step.fresh[i as usize] || step.fresh[j as usize]);
    }
    let cross_weight = |i: usize, j: usize| model.weight(&compare(nodes, &ix, i, j), p);
    let mut links: Vec<(u32, u32, f64, Option<Veto>)> = scored
        .into_iter()
        .map(|(w, i, j, strong)| {
            let veto = clusters.merge(i as usize, j as usize, strong, p, &cross_weight);
            (i, j, w, veto)
        })
        .collect();
    if p.household_context {
        let fresh = step.map(|s| s.fresh);
        links.extend(household_context(
            nodes,
            &ix,
            &mut clusters,
            &model,
            p,
            fresh,
        ));
    }
    Linked {
        person: clusters.dense_ids(),
        model,
        links,
        weights,
    }
}

/// Passes of the household context: a link it makes can anchor two more households.
const CONTEXT_PASSES: usize = 3;

/// Household context: two households (of two operators, or two entries of one) that already
/// share a person are one family seen twice, so their other members are weighed against each
/// other with that prior instead of the territory-wide one — even when they share no key (a
/// missing date and a misspelt name), since the family, not a key, brought them together. A
/// member is matched only to a member of the other household with the same role, where the
/// merge's own vetoes on sexes, years and size allow it, and each must be the other's best candidate by a clear
/// margin (two brothers of unknown ages are not guessed); a person already present in the
/// other household is not matched again. The merge passes the usual vetoes. In an incremental
/// run only pairs with a fresh record are decided. Returns the links tried.
fn household_context(
    nodes: &[Node],
    ix: &Indexed,
    clusters: &mut Clusters,
    model: &Model,
    p: &LinkParams,
    fresh: Option<&[bool]>,
) -> Vec<(u32, u32, f64, Option<Veto>)> {
    // The prior within two households sharing a person: even odds (weights carry the
    // territory's prior log-odds, which this replaces; never a penalty).
    let bonus = (-(model.lambda / (1.0 - model.lambda)).log2()).max(0.0);
    let context_weight = |i: usize, j: usize| model.weight(&compare(nodes, ix, i, j), p) + bonus;
    let mut members: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for (i, &h) in ix.households.iter().enumerate() {
        if h != 0 {
            members.entry(h).or_default().push(i);
        }
    }
    let mut links = Vec::new();
    for _ in 0..CONTEXT_PASSES {
        // Households of each person, then the pairs of households a person joins.
        let mut households_of: FxHashMap<usize, Vec<u32>> = FxHashMap::default();
        for (i, &h) in ix.households.iter().enumerate() {
            if h != 0 {
                let root = clusters.find(i);
                let hs = households_of.entry(root).or_default();
                if !hs.contains(&h) {
                    hs.push(h);
                }
            }
        }
        let mut anchored: Vec<(u32, u32)> = households_of
            .values()
            .filter(|hs| hs.len() > 1)
            .flat_map(|hs| {
                hs.iter()
                    .enumerate()
                    .flat_map(move |(x, &a)| hs[x + 1..].iter().map(move |&b| (a.min(b), a.max(b))))
            })
            .collect();
        anchored.sort_unstable();
        anchored.dedup();
        let mut proposals: Vec<(f64, usize, usize)> = Vec::new();
        for &(h1, h2) in &anchored {
            let (m1, m2) = (&members[&h1], &members[&h2]);
            // Compatible pairs not yet one person, whose persons are absent from the other side.
            let mut options: Vec<(f64, usize, usize)> = Vec::new();
            for &a in m1 {
                let ra = clusters.find(a);
                if households_of[&ra].contains(&h2) {
                    continue;
                }
                for &b in m2 {
                    let rb = clusters.find(b);
                    // Options a merge would refuse anyway are no rivals either.
                    if ra == rb
                        || households_of[&rb].contains(&h1)
                        || fresh.is_some_and(|f| !f[a] && !f[b])
                        || ix.traits[a][1] == 0
                        || ix.traits[a][1] != ix.traits[b][1]
                        || clusters.traits_veto(ra, rb, false, p).is_some()
                    {
                        continue;
                    }
                    let c = compare(nodes, ix, a, b);
                    let w = model.weight(&c, p) + bonus;
                    if w >= p.evidence_threshold_for(&c) {
                        options.push((w, a, b));
                    }
                }
            }
            // Mutual best by a clear margin over every other option of either member.
            for &(w, a, b) in &options {
                let rival = options
                    .iter()
                    .filter(|o| (o.1 == a) != (o.2 == b))
                    .map(|o| o.0)
                    .fold(f64::NEG_INFINITY, f64::max);
                if w - rival >= CONTEXT_MARGIN {
                    proposals.push((w, a, b));
                }
            }
        }
        if proposals.is_empty() {
            break;
        }
        proposals.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut merged = false;
        for (w, a, b) in proposals {
            let veto = clusters.merge(a, b, false, p, &context_weight);
            merged |= veto.is_none();
            links.push((a.min(b) as u32, a.max(b) as u32, w, veto));
        }
        if !merged {
            break;
        }
    }
    links
}

/// How much better (log2) a household-context match must be than any other option of either
/// member: one bit, twice the odds.
const CONTEXT_MARGIN: f64 = 1.0;

/// Pairs of records one operator lists in the same household whose own comparison does not
/// reach the threshold: two members of one household (twins, siblings), which no chain of
/// links through other records may make one person. A household lists a person once, so
/// only direct evidence can merge two of its records (an operator's duplicate entry) —
/// except two records with the same role that cannot be two relatives: a household has one
/// applicant and at most one partner, and two of its children (or other adults) whose keys
/// agree on the whole first name are one person entered twice (twins have two first names;
/// a father and son of one name have two roles). Other records may join those like any
/// other pair.
fn household_apart(
    nodes: &[Node],
    ix: &Indexed,
    pairs: &[(u32, u32)],
    weights: &[f64],
    comparisons: &[Comparison],
    p: &LinkParams,
) -> Vec<(usize, usize)> {
    let mut households: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for (i, &h) in ix.households.iter().enumerate() {
        if h != 0 {
            households.entry(h).or_default().push(i);
        }
    }
    let same_household = |i: u32, j: u32| {
        ix.households[i as usize] != 0 && ix.households[i as usize] == ix.households[j as usize]
    };
    // A pair reaches its threshold when its weight, less the threshold its level needs, is ≥ 0.
    let margin_of: FxHashMap<(usize, usize), (f64, u8)> = pairs
        .iter()
        .zip(weights)
        .zip(comparisons)
        .filter(|&((&(i, j), _), _)| same_household(i, j))
        .map(|((&(i, j), &w), c)| {
            (
                (i as usize, j as usize),
                (w - p.threshold_for(c), c.identity),
            )
        })
        .collect();
    let mut apart = Vec::new();
    for members in households.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let key = (i.min(j), i.max(j));
                let compared = margin_of.get(&key);
                let first_names_agree = compared.is_some_and(|c| whole_first_name_agrees(c.1));
                if one_person_twice(&nodes[i], &nodes[j], first_names_agree) {
                    continue;
                }
                if compared.is_none_or(|c| c.0 < 0.0) {
                    apart.push(key);
                }
            }
        }
    }
    apart
}

/// Two records of one household that can only be one person: both its applicant, both its
/// partner, or two children (or other adults) whose first names agree.
fn one_person_twice(a: &Node, b: &Node, first_names_agree: bool) -> bool {
    let role = |n: &Node| n.traits[1].as_deref().and_then(HouseholdRole::from_code);
    match (role(a), role(b)) {
        (Some(x), Some(y)) if x == y => match x {
            HouseholdRole::Demandeur | HouseholdRole::Conjoint => true,
            HouseholdRole::Enfant | HouseholdRole::AutreAdulte => first_names_agree,
        },
        _ => false,
    }
}

/// Identity levels decided by a key holding the whole first name (with the surname or the
/// date), not a contradiction: ndf, pdf, tsd+tfd, ndx, nfm, nym/nyd, tfd, nfy, nfd.
fn whole_first_name_agrees(identity: u8) -> bool {
    identity <= NAMES_YEAR_PART_LEVEL
        || matches!(
            identity,
            FIRST_TOKEN_DATE_LEVEL | NAMES_YEAR_LEVEL | NAMES_DECADE_LEVEL
        )
}

/// Union-find over nodes with the per-person facts that veto a merge.
struct Clusters {
    parent: Vec<usize>,
    size: Vec<usize>,
    sexes: Vec<(bool, bool)>,
    years: Vec<Option<(i32, i32)>>,
    /// Per root: nodes that must stay in another person than any node of this one.
    apart: Vec<Vec<usize>>,
    /// Per root: its nodes.
    members: Vec<Vec<usize>>,
}

impl Clusters {
    fn new(nodes: &[Node], apart_pairs: &[(usize, usize)]) -> Self {
        let mut apart = vec![Vec::new(); nodes.len()];
        for &(i, j) in apart_pairs {
            apart[i].push(j);
            apart[j].push(i);
        }
        Clusters {
            parent: (0..nodes.len()).collect(),
            size: vec![1; nodes.len()],
            sexes: nodes
                .iter()
                .map(|n| (n.sex == Some('M'), n.sex == Some('F')))
                .collect(),
            years: nodes.iter().map(|n| n.birth_year.map(|y| (y, y))).collect(),
            apart,
            members: (0..nodes.len()).map(|i| vec![i]).collect(),
        }
    }

    /// Some node of one root must stay apart from some node of the other.
    fn kept_apart(&mut self, a: usize, b: usize) -> bool {
        let (from, to) = if self.apart[a].len() <= self.apart[b].len() {
            (a, b)
        } else {
            (b, a)
        };
        (0..self.apart[from].len()).any(|k| {
            let other = self.apart[from][k];
            self.find(other) == to
        })
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Joins two nodes' persons with no veto: a decision taken by an earlier run.
    fn join(&mut self, i: usize, j: usize) {
        let (a, b) = (self.find(i), self.find(j));
        if a != b {
            let (sexes, years) = self.combined(a, b);
            self.unite(a, b, sexes, years);
        }
    }

    /// The veto two persons (roots) meet on size, sexes or birth-year spread alone, before any
    /// comparison of their records.
    fn traits_veto(&self, a: usize, b: usize, strong_date: bool, p: &LinkParams) -> Option<Veto> {
        if self.size[a] + self.size[b] > p.max_cluster {
            return Some(Veto::ClusterSize);
        }
        let (sexes, years) = self.combined(a, b);
        if sexes.0 && sexes.1 {
            return Some(Veto::Sexes);
        }
        if !strong_date && years.is_some_and(|(lo, hi)| hi - lo > p.max_year_span) {
            return Some(Veto::YearSpan);
        }
        None
    }

    /// Merges the persons of two nodes unless a veto applies (returned; `None` when merged or
    /// already one). A pair whose names agree with the day and month of birth (`strong_date`)
    /// may bridge a typo in the year, so the year-span veto does not apply to it.
    fn merge(
        &mut self,
        i: usize,
        j: usize,
        strong_date: bool,
        p: &LinkParams,
        cross_weight: &impl Fn(usize, usize) -> f64,
    ) -> Option<Veto> {
        let (a, b) = (self.find(i), self.find(j));
        if a == b {
            return None;
        }
        if let Some(veto) = self.traits_veto(a, b, strong_date, p) {
            return Some(veto);
        }
        if self.kept_apart(a, b) {
            return Some(Veto::Household);
        }
        if self.members[a].len() + self.members[b].len() > 2
            && !self.evidence_holds(a, b, cross_weight, p)
        {
            return Some(Veto::Evidence);
        }
        let (sexes, years) = self.combined(a, b);
        self.unite(a, b, sexes, years);
        None
    }

    /// All pairs across two persons taken together still favour one person: a single good
    /// link must not carry records whose own comparisons contradict each other (chaining).
    fn evidence_holds(
        &self,
        a: usize,
        b: usize,
        cross_weight: &impl Fn(usize, usize) -> f64,
        p: &LinkParams,
    ) -> bool {
        let mut total = 0.0;
        let mut n = 0usize;
        for &x in &self.members[a] {
            for &y in &self.members[b] {
                total += cross_weight(x, y);
                n += 1;
            }
        }
        total / n as f64 >= p.threshold
    }

    /// The sexes seen and the birth-year range of two roots taken together.
    fn combined(&self, a: usize, b: usize) -> ((bool, bool), Option<(i32, i32)>) {
        let (sa, sb) = (self.sexes[a], self.sexes[b]);
        let years = match (self.years[a], self.years[b]) {
            (Some((lo1, hi1)), Some((lo2, hi2))) => Some((lo1.min(lo2), hi1.max(hi2))),
            (x, None) | (None, x) => x,
        };
        ((sa.0 || sb.0, sa.1 || sb.1), years)
    }

    fn unite(&mut self, a: usize, b: usize, sexes: (bool, bool), years: Option<(i32, i32)>) {
        let (big, small) = if self.size[a] >= self.size[b] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
        let moved = std::mem::take(&mut self.apart[small]);
        self.apart[big].extend(moved);
        let members = std::mem::take(&mut self.members[small]);
        self.members[big].extend(members);
        self.sexes[big] = sexes;
        self.years[big] = years;
    }

    fn dense_ids(&mut self) -> Vec<usize> {
        let mut ids: HashMap<usize, usize> = HashMap::new();
        (0..self.parent.len())
            .map(|i| {
                let r = self.find(i);
                let next = ids.len();
                *ids.entry(r).or_insert(next)
            })
            .collect()
    }
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
                .map(|(f, v)| NodeKey::parse(f, v).expect("a known family"))
                .collect(),
            ..Default::default()
        }
    }

    /// A background of clear matches (strong keys) and of strangers sharing only a weak key, so
    /// that EM has both classes to learn from.
    fn background() -> Vec<Node> {
        let mut nodes = Vec::new();
        for i in 0..200 {
            let (strong, weak) = (format!("s{i}"), format!("w{}", i / 2));
            let year = 1950 + (i % 50);
            nodes.push(node("a", 'M', year, &[("ndf", &strong), ("nfy", &weak)]));
            nodes.push(node("b", 'M', year, &[("ndf", &strong), ("nfy", &weak)]));
        }
        for i in 0..200 {
            // Strangers: same common name pair and decade, different exact dates and years.
            let weak = format!("c{}", i / 4);
            nodes.push(node("c", 'F', 1960 + (i % 4) * 3, &[("nfd", &weak)]));
        }
        nodes
    }

    /// The background with `extra` nodes appended, and the index of the first of them.
    fn in_background(extra: impl IntoIterator<Item = Node>) -> (Vec<Node>, usize) {
        let mut nodes = background();
        let base = nodes.len();
        nodes.extend(extra);
        (nodes, base)
    }

    #[test]
    fn em_learns_strong_keys_and_keeps_weak_ones_apart() {
        let nodes = background();
        let linked = link_detailed(&nodes, &LinkParams::default());
        let m = &linked.model;
        let strong = m.pattern_m[0] / m.pattern_u[0];
        assert!(strong > 8.0, "ndf agreement must weigh: {strong}");
        let ids = &linked.person;
        for i in 0..200 {
            assert_eq!(ids[2 * i], ids[2 * i + 1], "pair {i} linked");
        }
        // The strangers with a common name pair and years apart stay apart.
        let strangers: std::collections::HashSet<usize> = ids[400..].iter().copied().collect();
        assert!(strangers.len() >= 150, "{} persons", strangers.len());
    }

    #[test]
    fn one_bad_pair_does_not_chain_father_and_son() {
        let mut nodes = background();
        let base = nodes.len();
        // Father (1960) and son (1990): same names, so the name + decade-free token key is
        // shared with an unknown-date record; each is otherwise seen twice with strong keys.
        nodes.push(node(
            "a",
            'M',
            1960,
            &[("ndf", "father"), ("tsd", "shared")],
        ));
        nodes.push(node("b", 'M', 1960, &[("ndf", "father")]));
        nodes.push(node("a", 'M', 1990, &[("ndf", "son"), ("tsd", "shared")]));
        nodes.push(node("b", 'M', 1990, &[("ndf", "son")]));
        let ids = link(&nodes, &LinkParams::default());
        assert_eq!(ids[base], ids[base + 1]);
        assert_eq!(ids[base + 2], ids[base + 3]);
        assert_ne!(ids[base], ids[base + 2], "father and son stay two persons");
    }

    #[test]
    fn a_household_member_without_first_name_does_not_chain_twins() {
        let with_household = |household: bool| {
            let mut nodes = background();
            let base = nodes.len();
            let hh = household.then(|| "h_twins".to_string());
            // Twins listed in one household by operator a: same surname and date, their own
            // first-name keys; operator b lists one of them without a first name.
            for (ndf, tfd) in [("twin1", "first1"), ("twin2", "first2")] {
                let mut twin = node(
                    "a",
                    'F',
                    2019,
                    &[("ndf", ndf), ("tsd", "lungu"), ("tfd", tfd)],
                );
                twin.household_ref = hh.clone();
                nodes.push(twin);
            }
            nodes.push(node("b", 'F', 2019, &[("tsd", "lungu")]));
            // A duplicate entry in one household with direct evidence still merges.
            for entry in ["first", "second"] {
                let mut dup = node("a", 'M', 1970, &[("ndf", "dup"), ("tsd", "dupsur")]);
                dup.record_ref = format!("r_dup_{entry}");
                dup.household_ref = hh.clone();
                nodes.push(dup);
            }
            // This small background learns modest weights: no same-operator penalty here, so
            // that the duplicate's direct evidence is enough and only the household rule decides.
            let p = LinkParams {
                same_operator_penalty: 0.0,
                ..LinkParams::default()
            };
            (link(&nodes, &p), base)
        };
        // Without the household, the chain through the record lacking a first name is still
        // refused: the twins' own comparison outweighs the two links to it.
        let (ids, base) = with_household(false);
        assert_ne!(
            ids[base],
            ids[base + 1],
            "the evidence across the chain holds"
        );
        assert!(ids[base + 2] == ids[base] || ids[base + 2] == ids[base + 1]);
        let (ids, base) = with_household(true);
        assert_ne!(
            ids[base],
            ids[base + 1],
            "twins of one household stay two persons"
        );
        assert!(ids[base + 2] == ids[base] || ids[base + 2] == ids[base + 1]);
        assert_eq!(
            ids[base + 3],
            ids[base + 4],
            "a duplicate entry with direct evidence merges"
        );
    }

    #[test]
    fn one_person_entered_twice_in_a_household_is_not_kept_apart() {
        // Two records of one household whose own comparison is far under the threshold: kept
        // apart (no chain may join them) unless their roles say they are one person.
        let kept_apart = |role: &str, keys: [&[(&str, &str)]; 2]| {
            let nodes: Vec<Node> = keys
                .iter()
                .enumerate()
                .map(|(n, keys)| {
                    let mut node = node("a", 'M', 1970, keys);
                    node.record_ref = format!("r_{n}");
                    node.household_ref = Some("h_1".into());
                    node.traits[1] = Some(role.into());
                    node
                })
                .collect();
            let ix = index(&nodes, None);
            let pairs = candidate_pairs(&ix, 50);
            let comparisons = compare_all(&nodes, &ix, &pairs);
            let weights = vec![-20.0; pairs.len()];
            let p = LinkParams::default();
            !household_apart(&nodes, &ix, &pairs, &weights, &comparisons, &p).is_empty()
        };
        let twins: [&[(&str, &str)]; 2] = [
            &[("ndf", "first1"), ("tsd", "sur")],
            &[("ndf", "first2"), ("tsd", "sur")],
        ];
        let same_first_name: [&[(&str, &str)]; 2] = [
            &[("ndf", "spelt1"), ("pdf", "same")],
            &[("ndf", "spelt2"), ("pdf", "same")],
        ];
        // A household has one applicant and at most one partner.
        assert!(!kept_apart("demandeur", twins));
        assert!(!kept_apart("conjoint", twins));
        // Two children with other first names may be twins; with one first name, one child.
        assert!(kept_apart("enfant", twins));
        assert!(!kept_apart("enfant", same_first_name));
        // Other roles, or roles unknown: relatives.
        assert!(kept_apart("autre_adulte", twins));
        assert!(kept_apart("", same_first_name));
        // The named levels are the ones their names say.
        for (level, family) in [
            (FIRST_TOKEN_DATE_LEVEL, "(tfd)"),
            (NAMES_YEAR_LEVEL, "(nfy)"),
            (NAMES_DECADE_LEVEL, "(nfd)"),
        ] {
            assert!(IDENTITY_LEVELS[level as usize].ends_with(family), "{level}");
        }
    }

    #[test]
    fn a_contradiction_needs_its_own_threshold() {
        // Same surname token and exact date, first names with other initials: twins, or a typo
        // in a first letter.
        let (nodes, base) = in_background([
            node("a", 'F', 1985, &[("tsd", "rare"), ("tfd", "first1")]),
            node("b", 'F', 1985, &[("tsd", "rare"), ("tfd", "first2")]),
        ]);
        let fitted = link_detailed(&nodes, &LinkParams::default());
        let c = compare_nodes(&nodes, base, base + 1);
        assert_eq!(c.identity, TWINS_LEVEL);
        let w = fitted.model.weight(&c, &LinkParams::default());
        let linked_with = |contradiction: f64| {
            let p = LinkParams {
                threshold: w - 0.5,
                contradiction_threshold: contradiction,
                // Keep the weights the fitted model gave (EM itself does not use thresholds).
                ..LinkParams::default()
            };
            let ids = link(&nodes, &p);
            ids[base] == ids[base + 1]
        };
        assert!(!linked_with(w + 0.5), "above the pair's weight: kept apart");
        assert!(linked_with(w - 0.5), "at or below it: linked");
        // A contradiction threshold under `threshold` does not lower it.
        let p = LinkParams {
            threshold: 1.0,
            contradiction_threshold: -3.0,
            ..LinkParams::default()
        };
        assert_eq!(p.threshold_for(&c), 1.0);
        let weak = Comparison { identity: 12, ..c };
        let defaults = LinkParams::default();
        assert_eq!(defaults.threshold_for(&weak), defaults.threshold);
        assert_eq!(defaults.threshold_for(&c), defaults.contradiction_threshold);
        assert!(defaults.contradiction_threshold > defaults.threshold);
    }

    #[test]
    fn a_pair_sharing_no_counted_key_is_never_linked_directly() {
        // Same surname end and date, two different first names: a candidate pair (the value
        // is blocked on) at the no-key level, with every trait agreeing.
        let (nodes, base) = in_background(["first1", "first2"].map(|first| {
            let mut n = node("a", 'M', 1975, &[("dsf", "end"), ("tfd", first)]);
            n.record_ref = format!("r_{first}");
            n
        }));
        let c = compare_nodes(&nodes, base, base + 1);
        assert_eq!(c.identity, NO_KEY_LEVEL);
        let p = LinkParams {
            threshold: -20.0,
            contradiction_threshold: -20.0,
            same_operator_penalty: 0.0,
            ..LinkParams::default()
        };
        let ids = link(&nodes, &p);
        assert_ne!(ids[base], ids[base + 1]);
    }

    #[test]
    fn sex_contradiction_vetoes_a_merge() {
        let (nodes, base) = in_background([
            node("a", 'M', 1980, &[("ndf", "x1")]),
            node("b", 'F', 1980, &[("ndf", "x1")]),
        ]);
        let ids = link(&nodes, &LinkParams::default());
        assert_ne!(ids[base], ids[base + 1]);
    }

    #[test]
    fn swapped_fields_agree_across_tags() {
        let (nodes, base) = in_background([
            node("a", 'F', 1983, &[("tsd", "ioana"), ("tfd", "keita")]),
            node("b", 'F', 1983, &[("tsd", "keita"), ("tfd", "ioana")]),
        ]);
        let c = compare_nodes(&nodes, base, base + 1);
        assert_eq!(
            IDENTITY_LEVELS[c.identity as usize],
            "one token + date, name fields swapped"
        );
    }

    #[test]
    fn the_same_records_give_the_same_weights() {
        let nodes = background();
        let p = LinkParams::default();
        let first = link_detailed(&nodes, &p);
        for _ in 0..5 {
            // Each run's hash maps get new random keys: the fitted model must not depend on them.
            let again = link_detailed(&nodes, &p);
            assert_eq!(first.model.pattern_m, again.model.pattern_m);
            assert_eq!(first.model.trait_u, again.model.trait_u);
            assert_eq!(first.person, again.person);
        }
    }

    #[test]
    fn a_step_with_the_full_runs_model_links_new_records_as_a_full_run_does() {
        let nodes = background();
        let p = LinkParams::default();
        let full = link_detailed(&nodes, &p);
        // The "b" records of the last 40 persons arrive in a new batch; the "a" records were
        // linked before (each its own person then). The step reads every holder of the new
        // records' values (phase 1), with one value declared common by the store.
        let fresh: Vec<bool> = (0..nodes.len())
            .map(|i| i < 400 && i % 2 == 1 && i >= 320)
            .collect();
        let held_by_fresh = |n: &Node| {
            n.keys
                .iter()
                .any(|k| (320..400).step_by(2).any(|f| nodes[f + 1].keys.contains(k)))
        };
        let read: Vec<usize> = (0..nodes.len())
            .filter(|&i| fresh[i] || held_by_fresh(&nodes[i]))
            .collect();
        let read_nodes: Vec<Node> = read.iter().map(|&i| nodes[i].clone()).collect();
        let read_fresh: Vec<bool> = read.iter().map(|&i| fresh[i]).collect();
        let common_value = nodes[395].keys[1].value;
        let counts = fresh_value_counts(
            &read_nodes,
            &read_fresh,
            &[(common_value, 900)].into_iter().collect(),
        );
        // A weak value held by two persons' four records; the common one keeps the store's count.
        assert_eq!(counts[&count_key(&nodes[397].keys[1])], 4);
        assert_eq!(counts[&count_key(&nodes[395].keys[1])], 900);
        assert!(!counts.contains_key(&count_key(&nodes[0].keys[0])));
        let seeds: Vec<Option<i64>> = read
            .iter()
            .map(|&i| (!fresh[i]).then_some(i as i64))
            .collect();
        let step = Step {
            fresh: &read_fresh,
            seeds: &seeds,
            model: &full.model,
            counts: &counts,
        };
        let stepped = link_step(&read_nodes, &step, &p);
        for (x, &i) in read.iter().enumerate() {
            for (y, &j) in read.iter().enumerate() {
                assert_eq!(
                    stepped.person[x] == stepped.person[y],
                    full.person[i] == full.person[j],
                    "nodes {i} and {j}"
                );
            }
        }
        let partners = step_partners(&read_nodes, &read_fresh, &full.model, &counts, &p);
        assert_eq!(partners.iter().filter(|p| **p).count(), 80);
    }

    #[test]
    fn a_node_line_reads_back_as_the_same_node() {
        let mut n = node("siao", 'F', 1983, &[("ndf", "a"), ("tsd", "b")]);
        n.household_ref = Some("h_1".into());
        n.traits[1] = Some("enfant".into());
        let line = node_line(&n);
        let back = node_from_line(&line).expect("a node");
        assert_eq!(node_line(&back), line);
        assert_eq!(
            (back.sex, back.birth_year, back.exact_date),
            (Some('F'), Some(1983), true)
        );
        assert_eq!(back.keys.len(), 2);
    }

    #[test]
    fn the_term_frequency_baseline_is_the_harmonic_mean_over_non_matches() {
        // A model under which every pair is a non-match: 100 pairs on values held by 2 records,
        // 10 on values held by 50. Agreeing by chance on a value of count k happens about k²
        // times as often, so the level's u is that of a value held by 110 / (100/2 + 10/50)
        // ≈ 2.19 records, not the arithmetic mean 6.4.
        let model = Model {
            lambda: 1e-9,
            pattern_m: vec![1.0; PATTERNS],
            pattern_u: vec![1.0; PATTERNS],
            trait_m: [[1.0; 3]; 4],
            trait_u: [[1.0; 3]; 4],
            level_mean_count: vec![0.0; IDENTITY_LEVELS.len()],
            pairs: 110,
        };
        let at = |value_count| Comparison {
            identity: 13,
            year: 0,
            traits: [2; 4],
            value_count,
            same_operator: false,
        };
        let comparisons: Vec<Comparison> = (0..100)
            .map(|_| at(2))
            .chain((0..10).map(|_| at(50)))
            .collect();
        let base = tf_baselines(&comparisons, &model)[13];
        assert!((base - 110.0 / 50.2).abs() < 1e-6, "{base}");
        // Only the values rarer than the baseline are credited.
        let fitted = Model {
            level_mean_count: tf_baselines(&comparisons, &model),
            ..model
        };
        let p = LinkParams::default();
        assert!(fitted.tf_adjustment(&at(2), &p) > 0.0);
        assert!(fitted.tf_adjustment(&at(3), &p) < 0.0);
    }

    #[test]
    fn term_frequency_lowers_common_values() {
        let nodes = background();
        let linked = link_detailed(&nodes, &LinkParams::default());
        let p = LinkParams::default();
        let mut c = Comparison {
            identity: DECADE_DATES_DIFFER_LEVEL,
            year: 2,
            traits: [0, 2, 2, 2],
            value_count: 2,
            same_operator: false,
        };
        let rare = linked.model.weight(&c, &p);
        c.value_count = 40;
        let common = linked.model.weight(&c, &p);
        assert!(rare > common + 2.0, "rare {rare} vs common {common}");
    }

    #[test]
    fn scores_are_exact_on_known_clusterings() {
        let q = score(&[0, 0, 1, 2, 2], &["x", "x", "y", "z", "z"]);
        assert!((q.f1 - 1.0).abs() < 1e-9 && q.count_error == 0.0, "{q:?}");
        let q = score(&[0, 0, 0, 1], &["x", "x", "y", "y"]);
        assert!((q.precision - 1.0 / 3.0).abs() < 1e-9 && (q.recall - 0.5).abs() < 1e-9);
    }
}
