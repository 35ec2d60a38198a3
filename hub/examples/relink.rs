//! Development aid: re-links a node dump written by `synchro-hub bench-linkage --dump-nodes DIR`
//! with other parameters, scores it against the true persons the dump carries and says why
//! persons were split (no shared blocking value, weight under the threshold, or which veto).
//!
//! `cargo run --release -p synchro-hub --example relink -- DIR/moderate.nodes [key=value ...]`
//! where each key is a `[linkage]` option of hub.toml (`threshold=0.5 max_block=80`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::{Context, Result};
use synchro_hub::linkage::{
    compare_pairs, link_detailed, node_from_line, score, LinkParams, Veto, IDENTITY_LEVELS,
};

/// The strongest pair joining one piece of a split person to another: whether it is a
/// candidate, its weight, its identity level, the pair.
type BestLink = (bool, f64, u8, (usize, usize));

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: relink FILE.nodes [key=value ...]")?;
    let settings: Vec<String> = args.collect();
    let table = synchro_hub::config::linkage_settings(settings.iter().map(String::as_str))?;
    let params: LinkParams = table.try_into().context("not a [linkage] option")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let mut labels = Vec::new();
    let mut nodes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (label, rest) = line.split_once('\t').context("no label")?;
        labels.push(label.to_string());
        nodes.push(node_from_line(rest).with_context(|| format!("line {}", n + 1))?);
    }
    let start = Instant::now();
    let linked = link_detailed(&nodes, &params);
    let seconds = start.elapsed().as_secs_f64();
    let persons = &linked.person;
    let q = score(persons, &labels);
    println!(
        "{} nodes: precision {:.3} recall {:.3} F1 {:.3} count {:+.1} % ({seconds:.2} s)",
        nodes.len(),
        q.precision,
        q.recall,
        q.f1,
        q.count_error * 100.0
    );
    print!("{}", linked.model.describe());
    // Why persons were split: for each piece of a true person beyond its largest, the best pair
    // joining it to another piece: none shares a blocked value, under the threshold, or vetoed.
    let mut by_label: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_label.entry(l).or_default().push(i);
    }
    let mut pairs = Vec::new();
    let mut owners = Vec::new();
    for members in by_label.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if persons[i] != persons[j] {
                    pairs.push((i, j));
                    owners.push(members[0]);
                }
            }
        }
    }
    let compared = compare_pairs(&nodes, &pairs, &params);
    // Per (person, piece): the best pair to another piece.
    let mut best: HashMap<(usize, usize), BestLink> = HashMap::new();
    for ((&(i, j), &owner), &(c, candidate)) in pairs.iter().zip(&owners).zip(&compared) {
        // The margin to the pair's own threshold (contradictions need more).
        let w = if candidate {
            linked.model.weight(&c, &params) - params.threshold_for(&c)
        } else {
            f64::NEG_INFINITY
        };
        for piece in [persons[i], persons[j]] {
            let e =
                best.entry((owner, piece))
                    .or_insert((false, f64::NEG_INFINITY, u8::MAX, (i, j)));
            if e.2 == u8::MAX || (candidate, w) > (e.0, e.1) {
                *e = (candidate, w, c.identity, (i, j));
            }
        }
    }
    // The largest piece of each split person is not an extra one.
    let mut size: HashMap<usize, usize> = HashMap::new();
    for &p in persons.iter() {
        *size.entry(p).or_default() += 1;
    }
    let mut largest: HashMap<usize, (usize, usize)> = HashMap::new();
    for &(owner, piece) in best.keys() {
        let e = largest.entry(owner).or_insert((0, piece));
        if (size[&piece], piece) > *e {
            *e = (size[&piece], piece);
        }
    }
    let vetoes: HashMap<(usize, usize), Veto> = linked
        .links
        .iter()
        .filter_map(|&(i, j, _, veto)| Some(((i as usize, j as usize), veto?)))
        .collect();
    let mut causes: BTreeMap<(u8, String), usize> = BTreeMap::new();
    for (&(owner, piece), &(candidate, w, level, pair)) in &best {
        if largest[&owner].1 == piece {
            continue;
        }
        let cause = if !candidate {
            "not blocked".to_string()
        } else if w < 0.0 {
            "under threshold".to_string()
        } else {
            match vetoes.get(&pair) {
                Some(v) => format!("veto {v:?}"),
                None => "not tried".to_string(),
            }
        };
        *causes.entry((level, cause)).or_default() += 1;
    }
    println!(
        "{} extra pieces of split persons, by their best link's level and cause:",
        causes.values().sum::<usize>()
    );
    for ((level, cause), n) in causes {
        println!("  {n:>7}  {cause:<20} {}", IDENTITY_LEVELS[level as usize]);
    }
    // The links that were made, by level: how many joined two true persons.
    let merged: Vec<(usize, usize)> = linked
        .links
        .iter()
        .filter(|l| l.3.is_none())
        .map(|l| (l.0 as usize, l.1 as usize))
        .collect();
    let mut made: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    for (&(i, j), (c, _)) in merged.iter().zip(compare_pairs(&nodes, &merged, &params)) {
        let e = made.entry(c.identity).or_default();
        if labels[i] == labels[j] {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    println!("links made, by level: true / false");
    for (level, (good, bad)) in made {
        println!("  {good:>7} {bad:>6}  {}", IDENTITY_LEVELS[level as usize]);
    }
    Ok(())
}
