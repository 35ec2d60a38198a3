//! Maps an export row to the template: validated attributes and the identity behind the keys.

use rustc_hash::FxHashMap;

use chrono::{Datelike, NaiveDate};
use synchro_shared::batch::Period;
use synchro_shared::normalise::{
    fold_value, fold_value_into, parse_date, BirthDate, DateKind, DateValue, NormalisedNames,
};
use synchro_shared::template::{
    AdminStatus, AgeBand, BirthDateMinimisation, ExitDestination, Field, HouseholdRole,
    LivingSituation, NameQuality, NationalityGroup, Need, Record, Resources, Sex,
};

use crate::export::{Export, ExportError, Row};
use crate::profile::{is_municipality_code, Profile, UNKNOWN_CODE};
use crate::report::{ColumnRef, Problem, ProblemKind};

/// Longest cell accepted: no template value is anywhere near it, so longer means a broken export.
pub const MAX_CELL_CHARS: usize = 500;

/// Values that mean "not known" in every coded column.
const UNKNOWN_VALUES: &[&str] = &[
    "",
    "inconnu",
    "inconnue",
    "nc",
    "nr",
    "?",
    "-",
    "non renseigne",
    "ne sait pas",
    "n/a",
];

/// Spellings every export may use without a profile line: the domain's normalisation rules
/// (sex H/M/1 and F/2; yes/no as French software writes it).
fn builtin_code(field: Field, folded: &str) -> Option<&'static str> {
    match field {
        Field::Sex => match folded {
            "h" | "m" | "1" | "homme" | "masculin" | "male" | "mr" | "monsieur" => Some("M"),
            "f" | "2" | "femme" | "feminin" | "female" | "mme" | "madame" => Some("F"),
            _ => None,
        },
        Field::AliasFlag | Field::SiaoRequest | Field::SocialHousingRequest => match folded {
            "oui" | "o" | "1" | "x" | "vrai" | "true" | "yes" | "y" => Some("oui"),
            "non" | "n" | "0" | "faux" | "false" | "no" => Some("non"),
            _ => None,
        },
        _ => None,
    }
}

/// The identity of a row, read only to derive pseudonyms; never serialised.
pub struct Identity {
    /// Normalised names.
    pub names: NormalisedNames,
    /// Classified birth date.
    pub birth: BirthDate,
    /// The operator flags the name as an alias.
    pub alias: bool,
}

/// A valid row: what is sent (minus keys and references) and what keys are derived from.
pub struct MappedRow {
    /// The operator's record id.
    pub local_id: String,
    /// The operator's household id.
    pub household_id: Option<String>,
    /// Identity for the keys.
    pub identity: Identity,
    /// The record to send, with empty `record_ref` and `keys` to fill in.
    pub record: Record,
}

/// Per-thread memory of a mapper: coded values already resolved, so that the thousands of
/// rows repeating "Hébergé chez un tiers" fold and look it up once.
#[derive(Default)]
pub struct MapScratch {
    /// Raw cell → what it resolved to, indexed by `Field::index`.
    codes: Vec<FxHashMap<Box<str>, ResolvedCode>>,
    /// Reused buffer for folded values.
    fold: String,
}

/// Distinct raw values remembered per field: bounds memory on free-text columns.
const CODE_CACHE_LIMIT: usize = 4096;

/// A raw value known to parse (from this text) or to mean "not known".
enum ResolvedCode {
    Parsed(Box<str>),
    Unknown,
}

/// Column positions resolved against an export's header.
pub struct Mapper {
    /// Column of each field, indexed by `Field::index`.
    columns: Vec<Option<ColumnRef>>,
    /// Folded export value → code, indexed by `Field::index`.
    values: Vec<FxHashMap<String, String>>,
    list_separators: Vec<char>,
    period: Period,
    minimisation: BirthDateMinimisation,
    width: usize,
}

impl Mapper {
    /// Resolves the profile's columns in the export header (fatal if one is missing).
    pub fn new(
        profile: &Profile,
        export: &Export,
        period: Period,
        minimisation: BirthDateMinimisation,
    ) -> Result<Self, ExportError> {
        let folded: Vec<String> = export.headers.iter().map(|h| fold_value(h)).collect();
        let mut columns = vec![None; Field::ALL.len()];
        for (field, header) in &profile.columns {
            let want = fold_value(header);
            let mut found = folded.iter().enumerate().filter(|(_, h)| **h == want);
            match (found.next(), found.next()) {
                (Some((index, _)), None) => {
                    columns[field.index()] = Some(ColumnRef {
                        index,
                        header: export.headers[index].clone(),
                    });
                }
                (Some(_), Some(_)) => {
                    return Err(ExportError::AmbiguousColumn {
                        file: export.name.clone(),
                        field: field.name(),
                        header: header.clone(),
                    })
                }
                (None, _) => {
                    return Err(ExportError::MissingColumn {
                        file: export.name.clone(),
                        field: field.name(),
                        header: header.clone(),
                        available: export
                            .headers
                            .iter()
                            .map(|h| format!("{h:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        let mut values = vec![FxHashMap::default(); Field::ALL.len()];
        for (field, map) in &profile.values {
            values[field.index()] = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        Ok(Mapper {
            columns,
            values,
            list_separators: profile.file.list_separators.chars().collect(),
            period,
            minimisation,
            width: export.headers.len(),
        })
    }

    /// The export column holding local ids.
    pub fn local_id_column(&self) -> ColumnRef {
        // Unwrap safety: local_id is a mandatory profile column, resolved in `new`.
        self.columns[Field::LocalId.index()]
            .clone()
            .expect("local_id column resolved")
    }

    /// Maps one row; on any problem, records it and returns `None` (the row is rejected).
    pub fn map(
        &self,
        row: &Row,
        problems: &mut Vec<Problem>,
        scratch: &mut MapScratch,
    ) -> Option<MappedRow> {
        let before = problems.len();
        if row.cells.len() != self.width {
            problems.push(Problem {
                line: row.line,
                column: None,
                kind: ProblemKind::RowWidth {
                    found: row.cells.len(),
                    expected: self.width,
                },
            });
            return None;
        }
        if scratch.codes.len() != Field::ALL.len() {
            scratch
                .codes
                .resize_with(Field::ALL.len(), FxHashMap::default);
        }
        let mut cx = RowContext {
            mapper: self,
            row,
            problems,
            scratch,
        };
        let local_id = cx.text(Field::LocalId).to_string();
        if local_id.is_empty() {
            cx.problem(Field::LocalId, ProblemKind::MissingValue(Field::LocalId));
        }
        let household_id = Some(cx.text(Field::HouseholdId))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let names = NormalisedNames::from_raw(
            cx.text(Field::BirthName),
            cx.text(Field::UsageName),
            cx.text(Field::FirstNames),
        );
        let birth = BirthDate::classify(
            cx.date(Field::BirthDate, DateKind::Birth)
                .unwrap_or(DateValue::Missing),
        );
        let alias = cx
            .coded(Field::AliasFlag, |c| Some(c == "oui"))
            .unwrap_or(false);
        let sex = cx.coded(Field::Sex, Sex::from_code);
        let household_role = cx.coded(Field::HouseholdRole, HouseholdRole::from_code);
        let household_size = cx.number(Field::HouseholdSize);
        let living_situation = cx.coded(Field::LivingSituation, LivingSituation::from_code);
        let first_contact = cx.event_date(Field::FirstContact);
        let problems_before_last_contact = cx.problems.len();
        let last_contact = cx.event_date(Field::LastContact);
        if last_contact.is_none() && cx.problems.len() == problems_before_last_contact {
            cx.problem(
                Field::LastContact,
                ProblemKind::MissingValue(Field::LastContact),
            );
        }
        let exit_date = cx.event_date(Field::ExitDate);
        let exit_destination = cx.coded(Field::ExitDestination, ExitDestination::from_code);
        let municipality = cx.municipality();
        let nationality = cx.coded(Field::Nationality, NationalityGroup::from_code);
        let admin_status = cx.coded(Field::AdminStatus, AdminStatus::from_code);
        let resources = cx.coded(Field::Resources, Resources::from_code);
        let siao_request = cx.coded(Field::SiaoRequest, |c| Some(c == "oui"));
        let social_housing_request = cx.coded(Field::SocialHousingRequest, |c| Some(c == "oui"));
        let needs = cx.needs();
        // An explicit "not known" is the template's `inconnu`; an empty cell is a missing value.
        let living_situation = match living_situation {
            None if cx.is_empty(Field::LivingSituation) => {
                cx.problem(
                    Field::LivingSituation,
                    ProblemKind::MissingValue(Field::LivingSituation),
                );
                None
            }
            None => Some(LivingSituation::Inconnu),
            some => some,
        };
        if let (Some(first), Some(last)) = (first_contact, last_contact) {
            if first > last {
                cx.problem(Field::FirstContact, ProblemKind::ContactOrder);
            }
        }
        if problems.len() > before {
            return None;
        }
        let name_quality = if names.has_surname() && names.has_first_name() {
            if alias {
                NameQuality::StreetName
            } else {
                NameQuality::Full
            }
        } else if names.has_surname() || names.has_first_name() {
            if alias {
                NameQuality::StreetName
            } else {
                NameQuality::Partial
            }
        } else {
            NameQuality::Missing
        };
        let (birth_year, age_band) = match (self.minimisation, birth.year()) {
            (BirthDateMinimisation::BirthYear, year) => (year, None),
            (BirthDateMinimisation::AgeBand, Some(year)) => {
                let reference = self.period.last_day();
                let age = match birth.exact() {
                    Some(d) => reference.years_since(d).map(|a| a as i32).unwrap_or(0),
                    None => reference.year() - year,
                };
                (None, Some(AgeBand::from_age(age)))
            }
            (BirthDateMinimisation::AgeBand, None) => (None, None),
        };
        // Both are present here: their absence recorded a problem above.
        let (living_situation, last_contact) = (living_situation?, last_contact?);
        Some(MappedRow {
            local_id,
            household_id,
            record: Record {
                record_ref: String::new(),
                household_ref: None,
                keys: Default::default(),
                name_quality,
                birth_date_quality: birth.quality(),
                sex,
                birth_year,
                age_band,
                household_role,
                household_size,
                living_situation,
                first_contact,
                last_contact,
                municipality,
                nationality,
                admin_status,
                resources,
                siao_request,
                social_housing_request,
                exit_date,
                exit_destination,
                needs,
            },
            identity: Identity {
                names,
                birth,
                alias,
            },
        })
    }
}

struct RowContext<'a> {
    mapper: &'a Mapper,
    row: &'a Row,
    problems: &'a mut Vec<Problem>,
    scratch: &'a mut MapScratch,
}

impl<'a> RowContext<'a> {
    fn problem(&mut self, field: Field, kind: ProblemKind) {
        self.problems.push(Problem {
            line: self.row.line,
            column: self.mapper.columns[field.index()].clone(),
            kind,
        });
    }

    /// The raw cell of a field, checked for length, formulas and control characters.
    fn cell(&mut self, field: Field) -> Option<&'a str> {
        let row: &'a Row = self.row;
        let index = self.mapper.columns[field.index()].as_ref()?.index;
        let raw = row.cells.get(index)?;
        // Byte length bounds the character count, so most cells need no counting.
        if raw.len() > MAX_CELL_CHARS && raw.chars().count() > MAX_CELL_CHARS {
            self.problem(field, ProblemKind::CellTooLong(field, MAX_CELL_CHARS));
            return None;
        }
        let trimmed = raw.trim();
        if trimmed.starts_with('=') {
            self.problem(field, ProblemKind::Formula(field));
            return None;
        }
        let suspicious = trimmed.bytes().any(|b| {
            (b < 0x20 && b != b'\n' && b != b'\r' && b != b'\t') || b == 0x7f || b == 0xc2
        });
        if suspicious
            && trimmed
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            self.problem(field, ProblemKind::ControlCharacters(field));
            return None;
        }
        Some(trimmed)
    }

    fn is_empty(&self, field: Field) -> bool {
        self.mapper.columns[field.index()]
            .as_ref()
            .and_then(|c| self.row.cells.get(c.index))
            .is_none_or(|s| s.trim().is_empty())
    }

    fn text(&mut self, field: Field) -> &'a str {
        self.cell(field).unwrap_or("")
    }

    fn date(&mut self, field: Field, kind: DateKind) -> Option<DateValue> {
        let raw = self.cell(field)?;
        match parse_date(raw, kind, self.mapper.period.year()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(field, ProblemKind::InvalidDate(field, e));
                None
            }
        }
    }

    /// A contact or exit date: a full date, not after the period.
    fn event_date(&mut self, field: Field) -> Option<NaiveDate> {
        match self.date(field, DateKind::Event)? {
            DateValue::Full(d) => {
                if d > self.mapper.period.last_day() {
                    self.problem(
                        field,
                        ProblemKind::DateAfterPeriod(field, self.mapper.period),
                    );
                    return None;
                }
                Some(d)
            }
            DateValue::Missing => None,
            DateValue::YearMonth(..) | DateValue::Year(_) => {
                self.problem(
                    field,
                    ProblemKind::InvalidDate(
                        field,
                        synchro_shared::normalise::DateError::Unrecognised,
                    ),
                );
                None
            }
        }
    }

    /// A coded value: the profile's mapping first, then the template code itself.
    fn coded<T>(&mut self, field: Field, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let raw = self.cell(field)?;
        self.code_of(field, raw, &parse)
    }

    fn code_of<T>(
        &mut self,
        field: Field,
        raw: &str,
        parse: &impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        match self.scratch.codes[field.index()].get(raw) {
            Some(ResolvedCode::Parsed(text)) => return parse(text),
            Some(ResolvedCode::Unknown) => return None,
            None => {}
        }
        let mut folded = std::mem::take(&mut self.scratch.fold);
        fold_value_into(raw, &mut folded);
        let mapped = self.mapper.values[field.index()]
            .get(folded.as_str())
            .map(String::as_str);
        let code = mapped
            .or_else(|| builtin_code(field, &folded))
            .unwrap_or(folded.as_str());
        let mapped_unknown = code == UNKNOWN_CODE && mapped.is_some();
        let parsed = if mapped_unknown {
            None
        } else {
            parse(code)
                .map(|p| (p, code))
                .or_else(|| parse(raw.trim()).map(|p| (p, raw.trim())))
        };
        // The "not known" spellings are looked up only when the value did not parse.
        let unknown =
            parsed.is_none() && (mapped_unknown || UNKNOWN_VALUES.contains(&folded.as_str()));
        let resolved = match &parsed {
            Some((_, text)) => Some(ResolvedCode::Parsed((*text).into())),
            None if unknown => Some(ResolvedCode::Unknown),
            None => None,
        };
        let cache = &mut self.scratch.codes[field.index()];
        if let Some(resolved) = resolved.filter(|_| cache.len() < CODE_CACHE_LIMIT) {
            cache.insert(raw.into(), resolved);
        }
        let parsed = parsed.map(|(p, _)| p);
        self.scratch.fold = folded;
        if parsed.is_some() || unknown {
            return parsed;
        }
        self.problem(
            field,
            ProblemKind::UnmappedValue(field, raw.trim().to_string()),
        );
        None
    }

    fn number(&mut self, field: Field) -> Option<u16> {
        let raw = self.cell(field)?;
        if raw.is_empty() {
            return None;
        }
        match raw.trim_end_matches(".0").parse::<u16>() {
            Ok(n) if (1..=30).contains(&n) => Some(n),
            _ => {
                self.problem(field, ProblemKind::InvalidNumber(field));
                None
            }
        }
    }

    fn municipality(&mut self) -> Option<String> {
        let raw = self.cell(Field::Municipality)?;
        if raw.is_empty() {
            return None;
        }
        if is_municipality_code(raw) {
            return Some(raw.to_ascii_uppercase());
        }
        let folded = fold_value(raw);
        if let Some(code) = self.mapper.values[Field::Municipality.index()].get(&folded) {
            return Some(code.to_ascii_uppercase());
        }
        if UNKNOWN_VALUES.contains(&folded.as_str()) {
            return None;
        }
        self.problem(
            Field::Municipality,
            ProblemKind::InvalidMunicipality(raw.to_string()),
        );
        None
    }

    fn needs(&mut self) -> Vec<Need> {
        let Some(raw) = self.cell(Field::Needs) else {
            return Vec::new();
        };
        let mapper = self.mapper;
        let mut out = Vec::new();
        for part in raw
            .split(|c| mapper.list_separators.contains(&c))
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if let Some(n) = self.code_of(Field::Needs, part, &Need::from_code) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out.sort();
        out
    }
}
