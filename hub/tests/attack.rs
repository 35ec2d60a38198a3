//! Frequency-alignment attack on the keyed values a hub holds.
//!
//! The hub cannot compute a key, but it sees how many records share each keyed value. An
//! attacker who knows the public frequency tables of surnames, first names and birth years
//! ranks the plaintexts a key family combines by their expected frequency, ranks the keyed
//! values by their observed counts, and pairs them rank by rank. A record is re-identified when
//! the plaintext paired with one of its keyed values carries its true name. Ties are broken at
//! random, so the expected success over a tie group is counted. The attacker here is given the
//! exact distributions the population was drawn from: the strongest version of that knowledge.

use std::collections::HashMap;

use synchro_shared::normalise::{parse_date, BirthDate, DateKind, DateValue, NormalisedNames};
use synchro_shared::pseudonym::{KeyFamily, LinkageSecret, MatchKeyDeriver};

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Draws an index with probability proportional to `weights`.
    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let x = self.unit() * cumulative[cumulative.len() - 1];
        cumulative.partition_point(|c| *c < x)
    }
}

/// Shifted Zipf weights, the shape of name tables: `offset` sets the top share. For 50,000
/// surnames with offset 30 the most common holds 0.44 % (Martin: 0.35 % in France); for 3,000
/// first names with offset 5, 2.6 % (the top first name of a birth cohort).
fn zipf(n: usize, offset: f64) -> Vec<f64> {
    (1..=n).map(|r| 1.0 / (r as f64 + offset)).collect()
}

/// `n` distinct pronounceable names (syllables), standing for a national name table.
fn name_table(n: usize, seed: u64) -> Vec<String> {
    const C: &[u8] = b"BDFGKLMNPRSTVZ";
    const V: &[u8] = b"AEIOU";
    let mut rng = Rng(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let syllables = 2 + (rng.unit() * 3.0) as usize;
        let name: String = (0..syllables)
            .flat_map(|_| {
                [
                    C[(rng.unit() * C.len() as f64) as usize] as char,
                    V[(rng.unit() * V.len() as f64) as usize] as char,
                ]
            })
            .collect();
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

fn cumulative(w: &[f64]) -> Vec<f64> {
    w.iter()
        .scan(0.0, |s, x| {
            *s += x;
            Some(*s)
        })
        .collect()
}

struct Person {
    surname: usize,
    first: usize,
    year: i32,
    month: u32,
    day: u32,
}

/// What a family combines, as the attacker tabulates it: (name part, other part).
fn projection(
    family: KeyFamily,
    p: &Person,
    surnames: &[String],
    firsts: &[String],
) -> Option<(String, String)> {
    let s = surnames[p.surname].clone();
    let f = firsts[p.first].clone();
    let initial = |x: &str| x.chars().next().unwrap_or('?').to_string();
    Some(match family.code() {
        "nfy" => (format!("{s} {f}"), p.year.to_string()),
        "nfd" => (format!("{s} {f}"), (p.year / 10).to_string()),
        "nfm" => (format!("{s} {f}"), format!("{}-{}", p.month, p.day)),
        "tsy" => (s, format!("{} {}", initial(&f), p.year)),
        "tfy" => (f, format!("{} {}", initial(&s), p.year)),
        _ => return None,
    })
}

#[test]
#[ignore = "fails today: 2.4 % re-identified, 2.0 % through tfy (first-name token + surname initial + year); needs key set v4, see docs/threat-model.md. Run with --ignored --nocapture for the figure"]
fn frequency_alignment_reidentifies_under_one_percent_of_records() {
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    let surnames = name_table(50_000, 0x5eed_0000_0000_0001);
    let firsts = name_table(3_000, 0x5eed_0000_0000_0002);
    let (sw, fw) = (zipf(surnames.len(), 30.0), zipf(firsts.len(), 5.0));
    let (sc, fc) = (cumulative(&sw), cumulative(&fw));
    let years: Vec<i32> = (1950..2006).collect();
    let mut rng = Rng(0xa77a_c4e5_0000_0001);
    let people: Vec<Person> = (0..20_000)
        .map(|_| Person {
            surname: rng.pick(&sc),
            first: rng.pick(&fc),
            year: years[(rng.unit() * years.len() as f64) as usize],
            month: 1 + (rng.unit() * 12.0) as u32,
            day: 1 + (rng.unit() * 28.0) as u32,
        })
        .collect();
    // What the hub holds: keyed values per family, with the record behind each (for scoring).
    let mut held: HashMap<(KeyFamily, String), Vec<usize>> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        let names = NormalisedNames::from_raw(&surnames[p.surname], "", &firsts[p.first]);
        let date = format!("{:02}/{:02}/{}", p.day, p.month, p.year);
        let birth = BirthDate::classify(
            parse_date(&date, DateKind::Birth, 2026).unwrap_or(DateValue::Missing),
        );
        for (family, values) in deriver.derive(&names, &birth) {
            for v in values {
                held.entry((family, v)).or_default().push(i);
            }
        }
    }
    let total_s: f64 = sw.iter().sum();
    let total_f: f64 = fw.iter().sum();
    let mut reidentified = vec![0.0f64; people.len()];
    let mut report = Vec::new();
    for family in KeyFamily::ALL {
        let Some(_) = projection(family, &people[0], &surnames, &firsts) else {
            continue;
        };
        // The attacker's table: every plaintext the family combines, by expected frequency.
        let mut table: HashMap<(String, String), f64> = HashMap::new();
        // The head of the tables is all the attacker can use: there are fewer keyed values
        // than head combinations.
        for (si, s) in sw.iter().enumerate().take(1500) {
            for (fi, f) in fw.iter().enumerate().take(400) {
                let p_names = s / total_s * f / total_f;
                // Date parts are spread evenly: only the name part carries information, so
                // one representative date per distinct date part is enough to rank them.
                let sample = Person {
                    surname: si,
                    first: fi,
                    year: 1950,
                    month: 1,
                    day: 1,
                };
                let (name, _) = projection(family, &sample, &surnames, &firsts).unwrap();
                *table.entry((name, String::new())).or_default() += p_names;
            }
        }
        let mut guesses: Vec<(String, f64)> = table.into_iter().map(|((n, _), w)| (n, w)).collect();
        guesses.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        // The observed side, ranked by count.
        let mut observed: Vec<(&Vec<usize>, usize)> = held
            .iter()
            .filter(|((f, _), _)| *f == family)
            .map(|(_, r)| (r, r.len()))
            .collect();
        observed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        // Each name part's expected number of distinct keyed values is its share times the
        // number of date parts; the attacker spreads its guesses accordingly, rank by rank.
        let date_parts = {
            let mut parts: Vec<String> = people
                .iter()
                .map(|p| projection(family, p, &surnames, &firsts).unwrap().1)
                .collect();
            parts.sort();
            parts.dedup();
            parts.len()
        };
        let mut expanded: Vec<&str> = Vec::new();
        for (name, _) in &guesses {
            for _ in 0..date_parts {
                expanded.push(name);
            }
            if expanded.len() >= observed.len() {
                break;
            }
        }
        // Expected success per tie group of equal counts.
        let mut start = 0;
        let mut family_hits = 0.0;
        while start < observed.len() {
            let count = observed[start].1;
            let end = start + observed[start..].partition_point(|o| o.1 == count);
            let group_guesses = &expanded[start.min(expanded.len())..end.min(expanded.len())];
            for (records, _) in &observed[start..end] {
                let truth = projection(family, &people[records[0]], &surnames, &firsts)
                    .unwrap()
                    .0;
                let right = group_guesses.iter().filter(|g| **g == truth).count() as f64
                    / (end - start) as f64;
                for &r in records.iter() {
                    reidentified[r] = 1.0 - (1.0 - reidentified[r]) * (1.0 - right);
                    family_hits += right;
                }
            }
            start = end;
        }
        report.push(format!(
            "{}: {:.3} % of records",
            family.code(),
            100.0 * family_hits / people.len() as f64
        ));
    }
    let share = reidentified.iter().sum::<f64>() / people.len() as f64;
    println!(
        "frequency alignment on {} records: {:.3} % re-identified (any family); per family: {}",
        people.len(),
        share * 100.0,
        report.join(", ")
    );
    assert!(
        share < 0.01,
        "{:.3} % of records re-identified: {}",
        share * 100.0,
        report.join(", ")
    );
}
