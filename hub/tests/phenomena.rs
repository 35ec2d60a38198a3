//! Hand-built linkage cases, each through the real normalisation and key derivation, placed in
//! a generated background population from which EM estimates its weights (as on real data,
//! nothing here is told the truth).

use synchro_hub::linkage::{link, LinkParams, Node};
use synchro_shared::normalise::{parse_date, BirthDate, DateKind, DateValue, NormalisedNames};
use synchro_shared::pseudonym::{LinkageSecret, MatchKeyDeriver};
use synchro_synth::names::{FEMALE_FIRST, MALE_FIRST, SURNAMES};

/// One operator's record of a person, as typed in its export.
struct Typed {
    operator: &'static str,
    birth_name: &'static str,
    usage_name: &'static str,
    first_names: &'static str,
    birth_date: &'static str,
    sex: Option<char>,
}

const fn rec(
    operator: &'static str,
    birth_name: &'static str,
    first_names: &'static str,
    birth_date: &'static str,
    sex: char,
) -> Typed {
    Typed {
        operator,
        birth_name,
        usage_name: "",
        first_names,
        birth_date,
        sex: Some(sex),
    }
}

fn node(deriver: &MatchKeyDeriver, id: String, t: &Typed) -> Node {
    node_of(
        deriver,
        id,
        t.operator,
        t.birth_name,
        t.usage_name,
        t.first_names,
        t.birth_date,
        t.sex,
    )
}

#[allow(clippy::too_many_arguments)]
fn node_of(
    deriver: &MatchKeyDeriver,
    id: String,
    operator: &str,
    birth_name: &str,
    usage_name: &str,
    first_names: &str,
    birth_date: &str,
    sex: Option<char>,
) -> Node {
    let names = NormalisedNames::from_raw(birth_name, usage_name, first_names);
    let birth = BirthDate::classify(
        parse_date(birth_date, DateKind::Birth, 2026).unwrap_or(DateValue::Missing),
    );
    let keys = deriver
        .derive(&names, &birth)
        .into_iter()
        .flat_map(|(f, values)| {
            values
                .into_iter()
                .filter_map(move |v| synchro_hub::linkage::NodeKey::parse(f.code(), &v))
        })
        .collect();
    Node {
        operator: operator.to_string(),
        record_ref: id,
        household_ref: None,
        sex,
        birth_year: birth.year(),
        exact_date: birth.exact().is_some(),
        traits: Default::default(),
        keys,
    }
}

/// Nationality groups and administrative statuses of the background (compared as codes only).
const NATIONALITY_GROUPS: [&str; 4] = ["francaise", "ue", "hors_ue", "inconnue"];
const ADMIN_STATUSES: [&str; 5] = ["titre", "demande", "sans", "protection", "inconnu"];

/// A small deterministic generator (xorshift), so the background is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// 4,000 persons, most seen by one operator (as in real territories), the others by two or
/// three; a fifth of repeat sightings with a typo or a missing first name, so EM sees matches
/// of every strength and the many strangers that share a common name.
fn background(deriver: &MatchKeyDeriver, with_traits: bool) -> Vec<Node> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Nationality group and administrative status, as operators record them (when asked; a
    // generator of its own, so that the identities are drawn the same either way).
    let mut trait_rng = Rng(0x7a17_5eed_0000_0002);
    let operators = ["siao", "ccas", "maraude", "chrs", "hopital"];
    let mut nodes = Vec::new();
    for p in 0..4000 {
        let surname = SURNAMES[rng.next(SURNAMES.len())].to_string();
        let female = rng.next(2) == 0;
        let first = if female {
            FEMALE_FIRST[rng.next(FEMALE_FIRST.len())][0]
        } else {
            MALE_FIRST[rng.next(MALE_FIRST.len())][0]
        };
        let date = format!(
            "{:02}/{:02}/{}",
            1 + rng.next(28),
            1 + rng.next(12),
            1950 + rng.next(56)
        );
        let sex = Some(if female { 'F' } else { 'M' });
        let nationality = NATIONALITY_GROUPS[trait_rng.next(NATIONALITY_GROUPS.len())];
        let admin = ADMIN_STATUSES[trait_rng.next(ADMIN_STATUSES.len())];
        let seen = [1, 1, 1, 2, 2, 3][rng.next(6)];
        let start = rng.next(operators.len());
        for k in 0..seen {
            let operator = operators[(start + k) % operators.len()];
            let (mut surname_typed, mut first_typed) = (surname.clone(), first.to_string());
            if k > 0 && rng.next(5) == 0 {
                match rng.next(2) {
                    0 if surname_typed.len() > 4 => {
                        // Two adjacent letters swapped.
                        let mut c: Vec<char> = surname_typed.chars().collect();
                        let at = 1 + rng.next(c.len() - 2);
                        c.swap(at, at + 1);
                        surname_typed = c.into_iter().collect();
                    }
                    _ => first_typed.clear(),
                }
            }
            let mut n = node_of(
                deriver,
                format!("bg{p}-{k}"),
                operator,
                &surname_typed,
                "",
                &first_typed,
                &date,
                sex,
            );
            if with_traits {
                n.traits[0] = Some(nationality.to_string());
                n.traits[2] = Some(admin.to_string());
            }
            nodes.push(n);
        }
    }
    nodes
}

/// (what, records, whether they are one person).
///
/// Not here because the linkage misses it today (docs/linkage.md, "Known misses"): a digit typo
/// in the year with names, day and month right, when strangers in the population share the
/// names + day/month key.
fn cases() -> Vec<(&'static str, Vec<Typed>, bool)> {
    vec![
        (
            "transliteration and particle: Mohamed BEN ALI / Mohammed BENALI",
            vec![
                rec("siao", "BEN ALI", "Mohamed", "14/02/1979", 'M'),
                rec("ccas", "BENALI", "Mohammed", "14/02/1979", 'M'),
            ],
            true,
        ),
        (
            "compound first name altered: Jean-Pierre / Jean Pierre / Pierre",
            vec![
                rec("siao", "LEFEBVRE", "Jean-Pierre", "03/07/1962", 'M'),
                rec("maraude", "LEFEBVRE", "Jean Pierre", "03/07/1962", 'M'),
                rec("chrs", "LEFEBVRE", "Pierre", "03/07/1962", 'M'),
            ],
            true,
        ),
        (
            "usage name of a married woman, birth name elsewhere",
            vec![
                Typed {
                    operator: "siao",
                    birth_name: "ROUSSEAU",
                    usage_name: "KOWALSKI",
                    first_names: "Sandrine",
                    birth_date: "21/09/1983",
                    sex: Some('F'),
                },
                rec("hopital", "ROUSSEAU", "Sandrine", "21/09/1983", 'F'),
                rec("ccas", "KOWALSKI", "Sandrine", "21/09/1983", 'F'),
            ],
            true,
        ),
        (
            "surname and first name swapped",
            vec![
                rec("siao", "KONATE", "Moussa", "11/11/1991", 'M'),
                rec("maraude", "MOUSSA", "KONATE", "11/11/1991", 'M'),
            ],
            true,
        ),
        (
            "day and month inverted",
            vec![
                rec("siao", "NGUYEN", "Thi Lan", "03/12/1980", 'F'),
                rec("chrs", "NGUYEN", "Thi Lan", "12/03/1980", 'F'),
            ],
            true,
        ),
        (
            "keyboard typo in the surname",
            vec![
                rec("siao", "BERTHELOT", "Armelle", "17/05/1970", 'F'),
                rec("ccas", "BERTHELIT", "Armelle", "17/05/1970", 'F'),
            ],
            true,
        ),
        (
            "placeholder date 01/01 at one operator, real date at another",
            vec![
                rec("siao", "TRAORE", "Aminata", "01/01/1996", 'F'),
                rec("maraude", "TRAORE", "Aminata", "19/06/1996", 'F'),
            ],
            true,
        ),
        (
            "missing first name at one operator",
            vec![
                rec("siao", "VASILESCU", "Ionut", "08/04/1975", 'M'),
                rec("chrs", "VASILESCU", "", "08/04/1975", 'M'),
            ],
            true,
        ),
        (
            "registered twice by the same operator",
            vec![
                rec("siao", "PETROV", "Dimitri", "30/10/1968", 'M'),
                rec("siao", "PETROV", "Dimitri", "30/10/1968", 'M'),
            ],
            true,
        ),
        (
            "twins: same surname and birth date, different first names",
            vec![
                rec("siao", "MARCHAND", "Lucas", "09/03/2001", 'M'),
                rec("ccas", "MARCHAND", "Hugo", "09/03/2001", 'M'),
            ],
            false,
        ),
        (
            "father and son with the same names",
            vec![
                rec("siao", "FONTAINE", "Michel", "12/05/1958", 'M'),
                rec("maraude", "FONTAINE", "Michel", "04/10/1986", 'M'),
            ],
            false,
        ),
        (
            "two common-name strangers born the same year",
            vec![
                rec("siao", "DIALLO", "Mamadou", "03/04/1990", 'M'),
                rec("hopital", "DIALLO", "Mamadou", "17/09/1990", 'M'),
            ],
            false,
        ),
        (
            "same names and date, different sexes",
            vec![
                rec("siao", "MOREL", "Camille", "15/01/1993", 'M'),
                rec("ccas", "MOREL", "Camille", "15/01/1993", 'F'),
            ],
            false,
        ),
    ]
}

#[test]
fn each_phenomenon_is_linked_or_kept_apart_as_it_should() {
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    let mut nodes = background(&deriver, false);
    let mut spans = Vec::new();
    for (c, (what, records, _)) in cases().iter().enumerate() {
        let start = nodes.len();
        for (r, t) in records.iter().enumerate() {
            nodes.push(node(&deriver, format!("case{c}-{r}"), t));
        }
        spans.push((*what, start..nodes.len()));
    }
    let person = link(&nodes, &LinkParams::default());
    let mut failures = Vec::new();
    for ((what, span), (_, _, together)) in spans.into_iter().zip(cases()) {
        let ids: Vec<usize> = span.map(|i| person[i]).collect();
        let one = ids.iter().all(|&p| p == ids[0]);
        let apart = {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            sorted.len() == ids.len()
        };
        if (together && !one) || (!together && !apart) {
            failures.push(format!(
                "{what}: expected {}, got persons {ids:?}",
                if together {
                    "one person"
                } else {
                    "distinct persons"
                }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One operator's household member: (birth name, first names, birth date, sex, role).
type Member = (&'static str, &'static str, &'static str, char, &'static str);

/// A household as one operator lists it, as nodes.
fn household(
    deriver: &MatchKeyDeriver,
    operator: &'static str,
    household: &str,
    members: &[Member],
) -> Vec<Node> {
    members
        .iter()
        .enumerate()
        .map(|(m, &(birth_name, first_names, birth_date, sex, role))| {
            let mut n = node(
                deriver,
                format!("{household}-{m}"),
                &rec(operator, birth_name, first_names, birth_date, sex),
            );
            n.household_ref = Some(household.to_string());
            n.traits = [
                Some("hors_ue".to_string()),
                Some(role.to_string()),
                Some("demande".to_string()),
            ];
            n
        })
        .collect()
}

#[test]
fn a_family_seen_by_two_operators_is_matched_member_to_member() {
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    // A family shares its nationality group and administrative status, which the household
    // context weighs with its roles: the background records them too, so EM learns them.
    let mut nodes = background(&deriver, true);
    let start = nodes.len();
    // The father and the son agree on every key; the mother's second record has no birth date
    // and a misspelt surname, so she shares no key with her first one; the two younger sons of
    // the second record have neither first name nor date: which is which cannot be told.
    let siao: &[Member] = &[
        ("DIALLO", "Moussa", "12/05/1980", 'M', "demandeur"),
        ("KONE", "Awa", "03/09/1984", 'F', "conjoint"),
        ("DIALLO", "Ibrahim", "21/02/2012", 'M', "enfant"),
        ("DIALLO", "Lucas", "02/03/2015", 'M', "enfant"),
        ("DIALLO", "Hugo", "14/10/2017", 'M', "enfant"),
    ];
    let ccas: &[Member] = &[
        ("DIALLO", "Moussa", "12/05/1980", 'M', "demandeur"),
        ("KOME", "Awa", "", 'F', "conjoint"),
        ("DIALLO", "Ibrahim", "21/02/2012", 'M', "enfant"),
        ("DIALLO", "", "", 'M', "enfant"),
        ("DIALLO", "", "", 'M', "enfant"),
    ];
    for (operator, id, members) in [("siao", "S1", siao), ("ccas", "C1", ccas)] {
        nodes.extend(household(&deriver, operator, id, members));
    }
    let at = |i: usize| start + i;
    let with = link(&nodes, &LinkParams::default());
    assert_eq!(with[at(0)], with[at(5)], "the father");
    assert_eq!(with[at(2)], with[at(7)], "the eldest son");
    assert_eq!(with[at(1)], with[at(6)], "the mother, through her family");
    for younger in [3, 4] {
        for unknown in [8, 9] {
            assert_ne!(with[at(younger)], with[at(unknown)], "a son guessed");
        }
    }
    assert_ne!(with[at(1)], with[at(0)], "the mother is not her husband");
    // Without the household context the mother's two records stay two persons: the case above
    // is carried by the family, not by her keys.
    let without = link(
        &nodes,
        &LinkParams {
            household_context: false,
            ..LinkParams::default()
        },
    );
    assert_ne!(without[at(1)], without[at(6)]);
}
