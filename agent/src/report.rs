//! The validation report: located problems and their French and English text.
//!
//! Identity cells (names, birth dates) are never echoed: a problem on them says where and what
//! was expected, not what was written, so a report can be forwarded without leaking identities.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use synchro_shared::batch::Period;
use synchro_shared::normalise::DateError;
use synchro_shared::template::{BirthDateQuality, Field, NameQuality};

/// Language of user-facing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French (default).
    #[default]
    Fr,
    /// English.
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language {other:?}: use fr or en")),
        }
    }
}

/// Picks the French or English text.
fn t<'a>(lang: Lang, fr: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// A column of the export, by position and header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// 0-based position.
    pub index: usize,
    /// Header as written in the export.
    pub header: String,
}

/// Spreadsheet letters for a 0-based column index (0 → A, 26 → AA).
pub fn column_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// A mandatory value is empty.
    MissingValue(Field),
    /// A date cell cannot be read.
    InvalidDate(Field, DateError),
    /// A contact or exit date after the end of the period.
    DateAfterPeriod(Field, Period),
    /// First contact after last contact.
    ContactOrder,
    /// A value the profile does not map (never an identity field).
    UnmappedValue(Field, String),
    /// Not a whole number in the expected range.
    InvalidNumber(Field),
    /// Not an INSEE municipality code and not mapped.
    InvalidMunicipality(String),
    /// A cell longer than the limit.
    CellTooLong(Field, usize),
    /// A spreadsheet formula instead of a value.
    Formula(Field),
    /// Control characters or binary bytes in a cell.
    ControlCharacters(Field),
    /// A row with another number of cells than the header.
    RowWidth {
        /// Cells found.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// The same local id on two rows.
    DuplicateLocalId {
        /// Line of the first occurrence.
        first_line: u64,
    },
}

/// A located problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Line in the file (1-based, the header is line 1 for CSV; the sheet row for XLSX).
    pub line: u64,
    /// The column, when the problem is in one cell.
    pub column: Option<ColumnRef>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Human names of template fields.
pub fn field_label(field: Field, lang: Lang) -> &'static str {
    use Field::*;
    match (field, lang) {
        (LocalId, Lang::Fr) => "identifiant local",
        (LocalId, Lang::En) => "local id",
        (HouseholdId, Lang::Fr) => "identifiant ménage",
        (HouseholdId, Lang::En) => "household id",
        (BirthName, Lang::Fr) => "nom de naissance",
        (BirthName, Lang::En) => "birth name",
        (UsageName, Lang::Fr) => "nom d'usage",
        (UsageName, Lang::En) => "usage name",
        (FirstNames, Lang::Fr) => "prénoms",
        (FirstNames, Lang::En) => "first names",
        (BirthDate, Lang::Fr) => "date de naissance",
        (BirthDate, Lang::En) => "birth date",
        (AliasFlag, Lang::Fr) => "alias ou nom de rue",
        (AliasFlag, Lang::En) => "alias flag",
        (Sex, Lang::Fr) => "sexe",
        (Sex, Lang::En) => "sex",
        (HouseholdRole, Lang::Fr) => "rôle dans le ménage",
        (HouseholdRole, Lang::En) => "household role",
        (HouseholdSize, Lang::Fr) => "taille du ménage",
        (HouseholdSize, Lang::En) => "household size",
        (LivingSituation, Lang::Fr) => "situation de logement",
        (LivingSituation, Lang::En) => "living situation",
        (FirstContact, Lang::Fr) => "date du premier contact",
        (FirstContact, Lang::En) => "first contact date",
        (LastContact, Lang::Fr) => "date du dernier contact",
        (LastContact, Lang::En) => "last contact date",
        (Municipality, Lang::Fr) => "code commune",
        (Municipality, Lang::En) => "municipality code",
        (Nationality, Lang::Fr) => "nationalité",
        (Nationality, Lang::En) => "nationality",
        (AdminStatus, Lang::Fr) => "situation administrative",
        (AdminStatus, Lang::En) => "administrative status",
        (Resources, Lang::Fr) => "ressources",
        (Resources, Lang::En) => "resources",
        (SiaoRequest, Lang::Fr) => "demande SIAO en cours",
        (SiaoRequest, Lang::En) => "pending SIAO request",
        (SocialHousingRequest, Lang::Fr) => "demande de logement social",
        (SocialHousingRequest, Lang::En) => "pending social-housing request",
        (ExitDate, Lang::Fr) => "date de sortie",
        (ExitDate, Lang::En) => "exit date",
        (ExitDestination, Lang::Fr) => "destination de sortie",
        (ExitDestination, Lang::En) => "exit destination",
        (Needs, Lang::Fr) => "besoins",
        (Needs, Lang::En) => "needs",
    }
}

fn date_reason(err: &DateError, identity: bool, lang: Lang) -> String {
    match (err, identity) {
        (DateError::Unrecognised, _) => t(
            lang,
            "date illisible ; attendu JJ/MM/AAAA, AAAA-MM-JJ, un nombre de date Excel, MM/AAAA ou AAAA",
            "unreadable date; expected DD/MM/YYYY, YYYY-MM-DD, an Excel date number, MM/YYYY or YYYY",
        )
        .into(),
        // Never echo the digits of a birth date.
        (DateError::Impossible { .. }, true) => t(
            lang,
            "date impossible (jour ou mois hors limites, ou jour et mois inversés)",
            "impossible date (day or month out of range, or day and month swapped)",
        )
        .into(),
        (DateError::Impossible { day, month, year }, false) => match lang {
            Lang::Fr => format!("date impossible (jour {day}, mois {month}, année {year})"),
            Lang::En => format!("impossible date (day {day}, month {month}, year {year})"),
        },
        (DateError::YearOutOfRange(_, max), true) => match lang {
            Lang::Fr => format!("année hors limites (attendu de 1880 à {max})"),
            Lang::En => format!("year out of range (expected 1880 to {max})"),
        },
        (DateError::YearOutOfRange(y, max), false) => match lang {
            Lang::Fr => format!("année {y} hors limites (attendu de 1880 à {max})"),
            Lang::En => format!("year {y} out of range (expected 1880 to {max})"),
        },
    }
}

impl ProblemKind {
    /// The sentence describing the problem.
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            ProblemKind::MissingValue(f) => match lang {
                Lang::Fr => format!("valeur obligatoire absente ({})", field_label(*f, lang)),
                Lang::En => format!("mandatory value missing ({})", field_label(*f, lang)),
            },
            ProblemKind::InvalidDate(f, e) => format!(
                "{}{}{}",
                field_label(*f, lang),
                t(lang, " : ", ": "),
                date_reason(e, f.is_identity(), lang)
            ),
            ProblemKind::DateAfterPeriod(f, p) => match lang {
                Lang::Fr => format!("{} postérieure à la fin de la période {p}", field_label(*f, lang)),
                Lang::En => format!("{} after the end of period {p}", field_label(*f, lang)),
            },
            ProblemKind::ContactOrder => t(
                lang,
                "date du premier contact postérieure à celle du dernier contact",
                "first contact date after the last contact date",
            )
            .into(),
            ProblemKind::UnmappedValue(f, v) => match lang {
                Lang::Fr => format!(
                    "valeur « {v} » non reconnue pour {} ; ajoutez-la au profil sous [values.{}]",
                    field_label(*f, lang),
                    f.name()
                ),
                Lang::En => format!(
                    "value {v:?} not recognised for {}; add it to the profile under [values.{}]",
                    field_label(*f, lang),
                    f.name()
                ),
            },
            ProblemKind::InvalidNumber(f) => match lang {
                Lang::Fr => format!("{} : nombre entier attendu (de 1 à 30)", field_label(*f, lang)),
                Lang::En => format!("{}: a whole number from 1 to 30 expected", field_label(*f, lang)),
            },
            ProblemKind::InvalidMunicipality(v) => match lang {
                Lang::Fr => format!(
                    "« {v} » n'est pas un code commune INSEE (5 caractères, ex. 69123) ; ajoutez-le au profil sous [values.municipality]"
                ),
                Lang::En => format!(
                    "{v:?} is not an INSEE municipality code (5 characters, e.g. 69123); map it under [values.municipality]"
                ),
            },
            ProblemKind::CellTooLong(f, max) => match lang {
                Lang::Fr => format!("{} : cellule trop longue (plus de {max} caractères)", field_label(*f, lang)),
                Lang::En => format!("{}: cell too long (over {max} characters)", field_label(*f, lang)),
            },
            ProblemKind::Formula(f) => match lang {
                Lang::Fr => format!(
                    "{} : formule de tableur au lieu d'une valeur ; exportez les valeurs, pas les formules",
                    field_label(*f, lang)
                ),
                Lang::En => format!(
                    "{}: a spreadsheet formula instead of a value; export values, not formulas",
                    field_label(*f, lang)
                ),
            },
            ProblemKind::ControlCharacters(f) => match lang {
                Lang::Fr => format!("{} : caractères de contrôle ou binaires dans la cellule", field_label(*f, lang)),
                Lang::En => format!("{}: control or binary characters in the cell", field_label(*f, lang)),
            },
            ProblemKind::RowWidth { found, expected } => match lang {
                Lang::Fr => format!(
                    "la ligne a {found} cellules alors que l'en-tête en a {expected} (guillemet ou séparateur mal placé ?)"
                ),
                Lang::En => format!(
                    "the row has {found} cells but the header has {expected} (misplaced quote or separator?)"
                ),
            },
            ProblemKind::DuplicateLocalId { first_line } => match lang {
                Lang::Fr => format!(
                    "identifiant local déjà présent ligne {first_line} : chaque dossier doit apparaître une fois par export"
                ),
                Lang::En => format!(
                    "local id already on line {first_line}: each record must appear once per export"
                ),
            },
        }
    }

    /// A short category used to count problems.
    pub fn category(&self) -> &'static str {
        match self {
            ProblemKind::MissingValue(_) => "missing_value",
            ProblemKind::InvalidDate(..) => "invalid_date",
            ProblemKind::DateAfterPeriod(..) => "date_after_period",
            ProblemKind::ContactOrder => "contact_order",
            ProblemKind::UnmappedValue(..) => "unmapped_value",
            ProblemKind::InvalidNumber(_) => "invalid_number",
            ProblemKind::InvalidMunicipality(_) => "invalid_municipality",
            ProblemKind::CellTooLong(..) => "cell_too_long",
            ProblemKind::Formula(_) => "formula",
            ProblemKind::ControlCharacters(_) => "control_characters",
            ProblemKind::RowWidth { .. } => "row_width",
            ProblemKind::DuplicateLocalId { .. } => "duplicate_local_id",
        }
    }
}

impl Problem {
    /// "fichier, ligne, colonne : problème" in the chosen language.
    pub fn render(&self, file: &str, lang: Lang) -> String {
        let mut s = match lang {
            Lang::Fr => format!("{file}, ligne {}", self.line),
            Lang::En => format!("{file}, line {}", self.line),
        };
        if let Some(col) = &self.column {
            let _ = match lang {
                Lang::Fr => write!(
                    s,
                    ", colonne {} « {} »",
                    column_letters(col.index),
                    col.header
                ),
                Lang::En => write!(
                    s,
                    ", column {} \"{}\"",
                    column_letters(col.index),
                    col.header
                ),
            };
        }
        format!("{s}{}{}", t(lang, " : ", ": "), self.kind.describe(lang))
    }
}

/// How many problems are listed one by one; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 200;

/// Everything a run learnt about an export.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// File name as shown to the user.
    pub file: String,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows accepted into the batch.
    pub rows_accepted: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Lines of the rejected rows (first ones).
    pub rejected_lines: Vec<u64>,
    /// Problems, the first [`MAX_LISTED_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Problem counts by category.
    pub problem_counts: BTreeMap<&'static str, u64>,
    /// Unmapped values: (field, value) → (count, first line).
    pub unmapped: BTreeMap<(Field, String), (u64, u64)>,
    /// Name quality counts.
    pub name_quality: BTreeMap<NameQuality, u64>,
    /// Birth-date quality counts.
    pub birth_date_quality: BTreeMap<BirthDateQuality, u64>,
    /// Accepted records that carry no match key (no usable identity).
    pub records_without_keys: u64,
}

impl Report {
    /// Records one problem.
    pub fn add(&mut self, problem: Problem) {
        *self
            .problem_counts
            .entry(problem.kind.category())
            .or_default() += 1;
        if let ProblemKind::UnmappedValue(f, v) = &problem.kind {
            let e = self
                .unmapped
                .entry((*f, v.clone()))
                .or_insert((0, problem.line));
            e.0 += 1;
        }
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Folds a worker's partial report into this one, keeping line order.
    pub fn merge(&mut self, other: Report) {
        self.rows_read += other.rows_read;
        self.rows_accepted += other.rows_accepted;
        self.rows_rejected += other.rows_rejected;
        self.records_without_keys += other.records_without_keys;
        for line in other.rejected_lines {
            if self.rejected_lines.len() < MAX_LISTED_PROBLEMS {
                self.rejected_lines.push(line);
            }
        }
        for (k, v) in other.problem_counts {
            *self.problem_counts.entry(k).or_default() += v;
        }
        for (k, (n, first)) in other.unmapped {
            let e = self.unmapped.entry(k).or_insert((0, first));
            e.0 += n;
            e.1 = e.1.min(first);
        }
        for p in other.problems {
            if self.problems.len() < MAX_LISTED_PROBLEMS {
                self.problems.push(p);
            }
        }
        for (k, v) in other.name_quality {
            *self.name_quality.entry(k).or_default() += v;
        }
        for (k, v) in other.birth_date_quality {
            *self.birth_date_quality.entry(k).or_default() += v;
        }
    }

    /// Total problems found.
    pub fn problem_total(&self) -> u64 {
        self.problem_counts.values().sum()
    }

    /// The report as text.
    pub fn render(&self, lang: Lang) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {}",
            t(lang, "Rapport de validation :", "Validation report:"),
            self.file
        );
        let _ = writeln!(
            s,
            "  {} {}  {} {}  {} {}",
            t(lang, "lignes lues :", "rows read:"),
            self.rows_read,
            t(lang, "acceptées :", "accepted:"),
            self.rows_accepted,
            t(lang, "rejetées :", "rejected:"),
            self.rows_rejected
        );
        if !self.problems.is_empty() {
            let _ = writeln!(s, "\n{}", t(lang, "Problèmes :", "Problems:"));
            for p in &self.problems {
                let _ = writeln!(s, "  - {}", p.render(&self.file, lang));
            }
            let total = self.problem_total();
            if total as usize > self.problems.len() {
                let _ = match lang {
                    Lang::Fr => writeln!(
                        s,
                        "  … et {} autres problèmes.",
                        total as usize - self.problems.len()
                    ),
                    Lang::En => writeln!(
                        s,
                        "  … and {} more problems.",
                        total as usize - self.problems.len()
                    ),
                };
            }
        }
        if !self.unmapped.is_empty() {
            let _ = writeln!(
                s,
                "\n{}",
                t(
                    lang,
                    "Valeurs non reconnues (à ajouter au profil de correspondance) :",
                    "Unmapped values (add them to the mapping profile):"
                )
            );
            for ((field, value), (count, first)) in &self.unmapped {
                let _ = match lang {
                    Lang::Fr => writeln!(
                        s,
                        "  [values.{}] « {value} » : {count} ligne(s), première ligne {first}",
                        field.name()
                    ),
                    Lang::En => writeln!(
                        s,
                        "  [values.{}] {value:?}: {count} row(s), first on line {first}",
                        field.name()
                    ),
                };
            }
        }
        if !self.name_quality.is_empty() {
            let _ = writeln!(
                s,
                "\n{}",
                t(lang, "Qualité des identités :", "Identity quality:")
            );
            for (q, n) in &self.name_quality {
                let label = match lang {
                    Lang::Fr => q.label_fr(),
                    Lang::En => q.label_en(),
                };
                let _ = writeln!(s, "  {label} : {n}");
            }
            for (q, n) in &self.birth_date_quality {
                let label = match lang {
                    Lang::Fr => q.label_fr(),
                    Lang::En => q.label_en(),
                };
                let _ = writeln!(s, "  {label} : {n}");
            }
            if self.records_without_keys > 0 {
                let _ = match lang {
                    Lang::Fr => writeln!(
                        s,
                        "  {} dossier(s) sans identité exploitable : ils seront comptés mais jamais rapprochés",
                        self.records_without_keys
                    ),
                    Lang::En => writeln!(
                        s,
                        "  {} record(s) without a usable identity: counted, never linked",
                        self.records_without_keys
                    ),
                };
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn birth_dates_are_not_echoed() {
        let p = Problem {
            line: 12,
            column: Some(ColumnRef {
                index: 5,
                header: "Date de naissance".into(),
            }),
            kind: ProblemKind::InvalidDate(
                Field::BirthDate,
                DateError::Impossible {
                    day: 31,
                    month: 2,
                    year: 1987,
                },
            ),
        };
        for lang in [Lang::Fr, Lang::En] {
            let text = p.render("export.csv", lang);
            assert!(!text.contains("1987") && !text.contains("31"), "{text}");
            assert!(text.contains("export.csv") && text.contains("12") && text.contains('F'));
        }
    }
}
