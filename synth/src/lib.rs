//! Synthetic, realistic French exports for demos, benchmarks and linkage evaluation.
//!
//! A population of people (households, twins, namesakes, married women with usage names,
//! people without papers) is followed over several months by several operators, each with its
//! own export style (columns, labels, date formats, encodings, CSV or XLSX) and its own way of
//! mistyping identities. A truth file says which local record is which person.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod names;
mod style;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Months, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use style::ExportStyle;

/// How dirty the operators' identity data are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dirtiness {
    /// Typical of well-kept files: occasional typos and variants.
    Moderate,
    /// Street outreach and emergency lines at their worst.
    Very,
}

/// Probabilities of each phenomenon, per registration of a person by an operator.
#[derive(Debug, Clone, Copy)]
struct Rates {
    typo: f64,
    translit: f64,
    compound: f64,
    particle: f64,
    usage_name: f64,
    swap_names: f64,
    phonetic: f64,
    missing_first: f64,
    year_only: f64,
    daymonth_swap: f64,
    digit_typo: f64,
    missing_dob: f64,
    missing_sex: f64,
    duplicate: f64,
}

impl Dirtiness {
    fn rates(self) -> Rates {
        match self {
            Dirtiness::Moderate => Rates {
                typo: 0.05,
                translit: 0.25,
                compound: 0.15,
                particle: 0.3,
                usage_name: 0.5,
                swap_names: 0.02,
                phonetic: 0.04,
                missing_first: 0.02,
                year_only: 0.01,
                daymonth_swap: 0.02,
                digit_typo: 0.02,
                missing_dob: 0.01,
                missing_sex: 0.02,
                duplicate: 0.02,
            },
            Dirtiness::Very => Rates {
                typo: 0.14,
                translit: 0.45,
                compound: 0.35,
                particle: 0.5,
                usage_name: 0.6,
                swap_names: 0.06,
                phonetic: 0.12,
                missing_first: 0.06,
                year_only: 0.05,
                daymonth_swap: 0.05,
                digit_typo: 0.06,
                missing_dob: 0.04,
                missing_sex: 0.06,
                duplicate: 0.05,
            },
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Random seed: the same seed gives the same files.
    pub seed: u64,
    /// People in the territory's population.
    pub persons: usize,
    /// Operators (their styles cycle through SIAO, CCAS, street outreach, hospital, shelter).
    pub operators: usize,
    /// Months of exports.
    pub months: u32,
    /// The first month.
    pub first_period: (i32, u32),
    /// Identity dirtiness.
    pub dirtiness: Dirtiness,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 42,
            persons: 400,
            operators: 4,
            months: 3,
            first_period: (2026, 8),
            dirtiness: Dirtiness::Moderate,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sex {
    M,
    F,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Demandeur,
    Conjoint,
    Enfant,
}

#[derive(Debug, Clone)]
struct Person {
    id: u32,
    household: u32,
    role: Role,
    sex: Sex,
    birth_name: String,
    usage_name: Option<String>,
    first_names: Vec<String>,
    /// Index into the first-name variant slot, so transliterations stay in the person's slot.
    first_slot: Option<&'static [&'static str]>,
    dob: NaiveDate,
    /// No papers: operators record a conventional or year-only date.
    undocumented: bool,
    nationality: usize,
    admin: usize,
    active: (u32, u32),
}

/// An identity as one operator typed it.
#[derive(Debug, Clone, Default)]
pub struct TypedIdentity {
    /// Birth-name cell.
    pub birth_name: String,
    /// Usage-name cell.
    pub usage_name: String,
    /// First-names cell.
    pub first_names: String,
    /// Birth-date cell (already formatted for the style).
    pub birth_date: Option<NaiveDateCell>,
    /// Sex known.
    pub sex_known: bool,
}

/// A birth date as recorded: full, year only, or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaiveDateCell {
    /// A full date (possibly wrong or conventional).
    Full(NaiveDate),
    /// Year only.
    Year(i32),
}

#[derive(Debug, Clone)]
struct Registration {
    operator: usize,
    local_id: String,
    household_id: String,
    person: usize,
    identity: TypedIdentity,
    months: Vec<u32>,
    first_contact: NaiveDate,
}

/// One generated export file.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// Operator id.
    pub operator_id: String,
    /// Period `YYYY-MM`.
    pub period: String,
    /// The file.
    pub path: PathBuf,
    /// Data rows.
    pub rows: usize,
}

/// One operator of the scenario.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Operator id (e.g. `siao-69`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Export style.
    pub style: ExportStyle,
}

/// A generated territory: population, operators and who registered whom.
pub struct Scenario {
    config: Config,
    /// The operators.
    pub operators: Vec<Operator>,
    persons: Vec<Person>,
    registrations: Vec<Registration>,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // Unwrap safety: every pool is a non-empty constant.
    items.choose(rng).expect("non-empty pool")
}

/// The name and style of the i-th operator.
fn operator_for(i: usize) -> Operator {
    let style = ExportStyle::ALL[i % ExportStyle::ALL.len()];
    let round = i / ExportStyle::ALL.len();
    let suffix = if round == 0 {
        String::new()
    } else {
        format!("-{}", round + 1)
    };
    let (id, name) = style.operator_name();
    Operator {
        id: format!("{id}{suffix}"),
        name: format!("{name}{suffix}"),
        style,
    }
}

impl Scenario {
    /// Generates a scenario.
    pub fn generate(config: Config) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let operators: Vec<Operator> = (0..config.operators.max(1)).map(operator_for).collect();
        let persons = population(&mut rng, &config);
        let registrations = register(&mut rng, &config, &persons, operators.len());
        Scenario {
            config,
            operators,
            persons,
            registrations,
        }
    }

    /// The periods covered, `YYYY-MM`.
    pub fn periods(&self) -> Vec<String> {
        (0..self.config.months)
            .map(|m| period_label(self.config.first_period, m))
            .collect()
    }

    /// True number of distinct people who appear in at least one export.
    pub fn persons_seen(&self) -> usize {
        let mut seen: Vec<usize> = self
            .registrations
            .iter()
            .filter(|r| !r.months.is_empty())
            .map(|r| r.person)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// The mapping profile of an operator (TOML for the agent).
    pub fn profile(&self, operator: usize) -> String {
        self.operators[operator].style.profile()
    }

    /// Writes every operator's export for every month under `dir/<operator>/`.
    pub fn write_exports(&self, dir: &Path) -> anyhow::Result<Vec<ExportFile>> {
        let mut files = Vec::new();
        for (oi, op) in self.operators.iter().enumerate() {
            let op_dir = dir.join(&op.id);
            std::fs::create_dir_all(&op_dir)?;
            for m in 0..self.config.months {
                let period = period_label(self.config.first_period, m);
                let rows: Vec<style::Row> = self
                    .registrations
                    .iter()
                    .filter(|r| r.operator == oi && r.months.contains(&m))
                    .map(|r| self.row(r, m))
                    .collect();
                let path = op_dir.join(format!("{}-{period}.{}", op.id, op.style.extension()));
                op.style.write(&path, &rows)?;
                files.push(ExportFile {
                    operator_id: op.id.clone(),
                    period,
                    path,
                    rows: rows.len(),
                });
            }
        }
        Ok(files)
    }

    /// Writes the truth file: `operator,local_id,person_id,household_id`.
    pub fn write_truth(&self, path: &Path) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_path(path)?;
        w.write_record(["operator", "local_id", "person_id", "household_id"])?;
        for r in self.registrations.iter().filter(|r| !r.months.is_empty()) {
            let p = &self.persons[r.person];
            w.write_record([
                self.operators[r.operator].id.as_str(),
                r.local_id.as_str(),
                &format!("P{}", p.id),
                &format!("H{}", p.household),
            ])?;
        }
        w.flush()?;
        Ok(())
    }

    fn row(&self, r: &Registration, month: u32) -> style::Row {
        let p = &self.persons[r.person];
        let mut rng =
            StdRng::seed_from_u64(self.config.seed ^ (u64::from(month) << 40) ^ r.person as u64);
        let period_start = period_date(self.config.first_period, month);
        let last_contact = period_start + chrono::Days::new(rng.gen_range(0..27));
        let is_last_month = r.months.last() == Some(&month);
        let exit = is_last_month && month + 1 < self.config.months && rng.gen_bool(0.3);
        let household_size = self
            .persons
            .iter()
            .filter(|q| q.household == p.household)
            .count()
            .min(30) as u16;
        style::Row {
            local_id: r.local_id.clone(),
            household_id: r.household_id.clone(),
            identity: r.identity.clone(),
            sex: p.sex == Sex::M,
            role: match p.role {
                Role::Demandeur => 0,
                Role::Conjoint => 1,
                Role::Enfant => 2,
            },
            household_size,
            situation: rng.gen_range(0..11),
            first_contact: r.first_contact,
            last_contact,
            municipality: pick(
                &mut rng,
                &["69123", "69266", "69259", "69029", "69290", "69384"],
            )
            .to_string(),
            nationality: p.nationality,
            admin: p.admin,
            resources: rng.gen_range(0..7),
            siao_request: rng.gen_bool(0.4),
            social_housing_request: rng.gen_bool(0.2),
            exit: exit.then(|| (last_contact, rng.gen_range(0..8))),
            needs: (0..rng.gen_range(0..3))
                .map(|_| rng.gen_range(0..9))
                .collect(),
        }
    }
}

fn period_date(first: (i32, u32), offset: u32) -> NaiveDate {
    // Unwrap safety: constructed from a valid year and month.
    NaiveDate::from_ymd_opt(first.0, first.1, 1)
        .and_then(|d| d.checked_add_months(Months::new(offset)))
        .expect("valid period")
}

fn period_label(first: (i32, u32), offset: u32) -> String {
    let d = period_date(first, offset);
    format!("{:04}-{:02}", d.year(), d.month())
}

fn first_name(rng: &mut StdRng, sex: Sex) -> (&'static [&'static str], String) {
    let pool = if sex == Sex::M {
        names::MALE_FIRST
    } else {
        names::FEMALE_FIRST
    };
    let slot = *pick(rng, pool);
    (slot, slot[0].to_string())
}

fn population(rng: &mut StdRng, config: &Config) -> Vec<Person> {
    let mut persons = Vec::with_capacity(config.persons);
    let mut household = 0u32;
    let ref_year = config.first_period.0;
    while persons.len() < config.persons {
        household += 1;
        let surname = pick(rng, names::SURNAMES).to_string();
        let undocumented = rng.gen_bool(0.08);
        let nationality = rng.gen_range(0..4);
        let admin = rng.gen_range(0..7);
        let active_start = rng.gen_range(0..config.months);
        let active = (active_start, rng.gen_range(active_start..config.months));
        let adult_dob = |rng: &mut StdRng| {
            let year = rng.gen_range(ref_year - 75..ref_year - 18);
            NaiveDate::from_ymd_opt(year, rng.gen_range(1..=12), rng.gen_range(1..=28))
                .unwrap_or_default()
        };
        let kind = rng.gen_range(0..100);
        let sex = if rng.gen_bool(0.68) { Sex::M } else { Sex::F };
        let (slot, first) = first_name(rng, sex);
        let head = Person {
            id: persons.len() as u32 + 1,
            household,
            role: Role::Demandeur,
            sex,
            birth_name: surname.clone(),
            usage_name: None,
            first_names: vec![first],
            first_slot: Some(slot),
            dob: adult_dob(rng),
            undocumented,
            nationality,
            admin,
            active,
        };
        let head_sex = head.sex;
        let head_dob = head.dob;
        persons.push(head);
        if kind < 60 {
            continue;
        }
        // A couple, possibly with children; the wife may use her husband's name.
        let partner_sex = if head_sex == Sex::M { Sex::F } else { Sex::M };
        let (pslot, pfirst) = first_name(rng, partner_sex);
        let partner_birth = if partner_sex == Sex::F {
            pick(rng, names::SURNAMES).to_string()
        } else {
            surname.clone()
        };
        let usage = (partner_sex == Sex::F && partner_birth != surname).then(|| surname.clone());
        persons.push(Person {
            id: persons.len() as u32 + 1,
            household,
            role: Role::Conjoint,
            sex: partner_sex,
            birth_name: partner_birth,
            usage_name: usage,
            first_names: vec![pfirst],
            first_slot: Some(pslot),
            dob: adult_dob(rng),
            undocumented,
            nationality,
            admin,
            active,
        });
        if kind < 75 {
            continue;
        }
        let children = rng.gen_range(1..=4);
        let mut previous: Option<NaiveDate> = None;
        for _ in 0..children {
            let sex = if rng.gen_bool(0.5) { Sex::M } else { Sex::F };
            let (slot, first) = first_name(rng, sex);
            // Twins: same birth date as the previous child, another first name.
            let dob = match previous {
                Some(d) if rng.gen_bool(0.1) => d,
                _ => NaiveDate::from_ymd_opt(
                    rng.gen_range(ref_year - 17..ref_year)
                        .max(head_dob.year() + 18),
                    rng.gen_range(1..=12),
                    rng.gen_range(1..=28),
                )
                .unwrap_or_default(),
            };
            previous = Some(dob);
            // Father and son with the same first name, now and then.
            let first = if sex == head_sex && rng.gen_bool(0.05) {
                persons[persons.len() - children.min(persons.len())].first_names[0].clone()
            } else {
                first
            };
            persons.push(Person {
                id: persons.len() as u32 + 1,
                household,
                role: Role::Enfant,
                sex,
                birth_name: surname.clone(),
                usage_name: None,
                first_names: vec![first],
                first_slot: Some(slot),
                dob,
                undocumented,
                nationality,
                admin,
                active,
            });
        }
    }
    persons.truncate(config.persons);
    persons
}

/// How many operators know a household: mostly one, sometimes up to four.
fn operator_count(rng: &mut StdRng, operators: usize) -> usize {
    let r: f64 = rng.gen();
    let n = if r < 0.55 {
        1
    } else if r < 0.80 {
        2
    } else if r < 0.93 {
        3
    } else {
        4
    };
    n.min(operators)
}

fn register(
    rng: &mut StdRng,
    config: &Config,
    persons: &[Person],
    operators: usize,
) -> Vec<Registration> {
    let rates = config.dirtiness.rates();
    let mut registrations = Vec::new();
    let mut next_local = vec![0u32; operators];
    let mut by_household: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, p) in persons.iter().enumerate() {
        by_household.entry(p.household).or_default().push(i);
    }
    for members in by_household.values() {
        let head = &persons[members[0]];
        let mut ops: Vec<usize> = (0..operators).collect();
        ops.shuffle(rng);
        ops.truncate(operator_count(rng, operators));
        for &op in &ops {
            // Each operator sees the household in some months of its active window.
            let months: Vec<u32> = (head.active.0..=head.active.1)
                .filter(|_| rng.gen_bool(0.75))
                .collect();
            let months = if months.is_empty() {
                vec![head.active.0]
            } else {
                months
            };
            next_local[op] += 1;
            let household_id = format!("M{:06}", next_local[op]);
            for &pi in members {
                let p = &persons[pi];
                let copies = if rng.gen_bool(rates.duplicate) { 2 } else { 1 };
                for copy in 0..copies {
                    next_local[op] += 1;
                    let identity = type_identity(rng, p, &rates, op);
                    let reg_months = if copy == 0 {
                        months.clone()
                    } else {
                        months
                            .iter()
                            .copied()
                            .filter(|_| rng.gen_bool(0.6))
                            .collect()
                    };
                    let first_contact = period_date(config.first_period, months[0])
                        - chrono::Days::new(rng.gen_range(0..400));
                    registrations.push(Registration {
                        operator: op,
                        local_id: format!(
                            "{}{:07}",
                            ["S", "C", "R", "H", "E"][op % 5],
                            next_local[op]
                        ),
                        household_id: household_id.clone(),
                        person: pi,
                        identity,
                        months: reg_months,
                        first_contact,
                    });
                }
            }
        }
    }
    registrations
}

fn typo(rng: &mut StdRng, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_string();
    }
    let i = rng.gen_range(1..chars.len());
    let mut out = chars.clone();
    match rng.gen_range(0..4) {
        0 => {
            out.remove(i);
        }
        1 => out.insert(i, chars[i - 1]),
        2 => out.swap(i - 1, i),
        _ => {
            if let Some(n) = names::azerty_neighbour(chars[i]) {
                out[i] = n;
            }
        }
    }
    out.into_iter().collect()
}

fn respell(rng: &mut StdRng, s: &str) -> String {
    let lower = s.to_lowercase();
    let candidates: Vec<&(&str, &str)> = names::RESPELLINGS
        .iter()
        .filter(|(a, _)| lower.contains(a))
        .collect();
    match candidates.choose(rng) {
        Some((a, b)) => {
            let replaced = lower.replacen(a, b, 1);
            let mut c = replaced.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => replaced,
            }
        }
        None => s.to_string(),
    }
}

/// An operator's own rendering of a person's identity, with that operator's mistakes.
fn type_identity(rng: &mut StdRng, p: &Person, r: &Rates, operator: usize) -> TypedIdentity {
    let mut surname = p.birth_name.clone();
    let mut usage = String::new();
    if let Some(u) = &p.usage_name {
        match rng.gen_range(0..3) {
            // Usage name typed as the only name.
            0 if rng.gen_bool(r.usage_name) => surname = u.clone(),
            1 => usage = u.clone(),
            _ if operator % 2 == 1 && rng.gen_bool(0.3) => {
                surname = format!("{} épouse {u}", p.birth_name)
            }
            _ => {}
        }
    }
    let mut first = p.first_names[0].clone();
    if let Some(slot) = p.first_slot {
        if slot.len() > 1 && rng.gen_bool(r.translit) {
            first = pick(rng, slot).to_string();
        }
    }
    if first.contains('-') && rng.gen_bool(r.compound) {
        let parts: Vec<&str> = first.split('-').collect();
        first = match rng.gen_range(0..3) {
            0 => parts.join(" "),
            1 => parts[0].to_string(),
            _ => parts[parts.len() - 1].to_string(),
        };
    }
    if (surname.contains(' ') || surname.contains('\'') || surname.contains('-'))
        && rng.gen_bool(r.particle)
    {
        surname = match rng.gen_range(0..3) {
            0 => surname.replace([' ', '\''], ""),
            1 => surname
                .rsplit([' ', '\'', '-'])
                .next()
                .unwrap_or(&surname)
                .to_string(),
            _ => surname.replace(' ', "-"),
        };
    }
    if rng.gen_bool(r.phonetic) {
        surname = respell(rng, &surname);
    }
    if rng.gen_bool(r.phonetic) {
        first = respell(rng, &first);
    }
    if rng.gen_bool(r.typo) {
        surname = typo(rng, &surname);
    }
    if rng.gen_bool(r.typo) {
        first = typo(rng, &first);
    }
    if rng.gen_bool(r.swap_names) {
        std::mem::swap(&mut surname, &mut first);
    }
    if rng.gen_bool(r.missing_first) {
        first = if rng.gen_bool(0.5) {
            String::new()
        } else {
            "X".into()
        };
    }
    let mut dob = Some(NaiveDateCell::Full(p.dob));
    if p.undocumented {
        dob = Some(match rng.gen_range(0..4) {
            0 | 1 => {
                NaiveDateCell::Full(NaiveDate::from_ymd_opt(p.dob.year(), 1, 1).unwrap_or(p.dob))
            }
            2 => NaiveDateCell::Year(p.dob.year()),
            _ => {
                NaiveDateCell::Full(NaiveDate::from_ymd_opt(p.dob.year(), 12, 31).unwrap_or(p.dob))
            }
        });
    } else if rng.gen_bool(r.missing_dob) {
        dob = None;
    } else if rng.gen_bool(r.year_only) {
        dob = Some(NaiveDateCell::Year(p.dob.year()));
    } else if rng.gen_bool(r.daymonth_swap) && p.dob.day() <= 12 {
        dob = NaiveDate::from_ymd_opt(p.dob.year(), p.dob.day(), p.dob.month())
            .map(NaiveDateCell::Full);
    } else if rng.gen_bool(r.digit_typo) {
        let d = match rng.gen_range(0..3) {
            0 => p.dob.with_day(((p.dob.day() + 9) % 28) + 1),
            1 => p
                .dob
                .with_year(p.dob.year() + if rng.gen_bool(0.5) { 1 } else { -10 }),
            _ => p.dob.with_day(((p.dob.day() + 1) % 28) + 1),
        };
        dob = d.map(NaiveDateCell::Full);
    }
    // Case and accents as each operator's software writes them.
    if operator % 3 == 0 {
        surname = surname.to_uppercase();
    }
    TypedIdentity {
        birth_name: surname,
        usage_name: usage,
        first_names: first,
        birth_date: dob,
        sex_known: !rng.gen_bool(r.missing_sex),
    }
}

/// Writes one large SIAO-style export of `rows` rows for benchmarks, streaming (bounded memory).
///
/// People are drawn independently (households of one), with the same name pools and date
/// phenomena as scenarios, so per-row costs match real exports.
pub fn write_bulk_export(path: &Path, rows: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(file);
    let style = ExportStyle::Siao;
    w.write_record(style.header_row())?;
    let rates = Dirtiness::Moderate.rates();
    let period = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
    for i in 0..rows {
        let sex = if rng.gen_bool(0.68) { Sex::M } else { Sex::F };
        let (slot, first) = first_name(&mut rng, sex);
        let dob = NaiveDate::from_ymd_opt(
            rng.gen_range(1940..2008),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28),
        )
        .unwrap_or_default();
        let person = Person {
            id: i as u32,
            household: i as u32,
            role: Role::Demandeur,
            sex,
            birth_name: pick(&mut rng, names::SURNAMES).to_string(),
            usage_name: None,
            first_names: vec![first],
            first_slot: Some(slot),
            dob,
            undocumented: rng.gen_bool(0.08),
            nationality: rng.gen_range(0..4),
            admin: rng.gen_range(0..7),
            active: (0, 0),
        };
        let row = style::Row {
            local_id: format!("S{i:08}"),
            household_id: format!("M{:08}", i / 2),
            identity: type_identity(&mut rng, &person, &rates, 0),
            sex: sex == Sex::M,
            role: 0,
            household_size: rng.gen_range(1..5),
            situation: rng.gen_range(0..11),
            first_contact: period - chrono::Days::new(rng.gen_range(0..700)),
            last_contact: period + chrono::Days::new(rng.gen_range(0..28)),
            municipality: "69123".into(),
            nationality: person.nationality,
            admin: person.admin,
            resources: rng.gen_range(0..7),
            siao_request: rng.gen_bool(0.4),
            social_housing_request: rng.gen_bool(0.2),
            exit: None,
            needs: vec![rng.gen_range(0..9)],
        };
        w.write_record(style.row_cells(&row))?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_complete() {
        let dir = tempfile_dir();
        let s = Scenario::generate(Config::default());
        let files = s.write_exports(&dir).unwrap();
        assert_eq!(files.len(), 4 * 3);
        assert!(files.iter().all(|f| f.rows > 0 && f.path.exists()));
        s.write_truth(&dir.join("truth.csv")).unwrap();
        let again = Scenario::generate(Config::default());
        assert_eq!(again.registrations.len(), s.registrations.len());
        assert!(s.persons_seen() <= 400);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("synchro-synth-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
