//! Identity normalisation the way French registers need it.
//!
//! Names: upper case, accents and ligatures folded, apostrophes, hyphens and underscores as
//! separators, digits dropped, placeholders ("INCONNU", "X", "*") read as missing, spouse
//! markers ("DUPONT ÉPOUSE MARTIN", "MARTIN NÉE DUPONT") split into birth and usage names.
//! Dates: DD/MM/YYYY, YYYY-MM-DD, Excel serial numbers, month-year, year only, and the
//! conventional dates given to people without papers (01/01/YYYY, 31/12/YYYY, 00/00/YYYY).

use chrono::{Datelike, NaiveDate};
use unicode_normalization::char::decompose_compatible;

/// Name particles kept in one key variant and dropped in another (never one form only).
const PARTICLES: &[&str] = &[
    "DE", "DU", "DES", "D", "LE", "LA", "LES", "L", "BEN", "BOU", "IBN", "BINT", "EL", "AL", "AIT",
    "OULD", "VAN", "VON", "DER", "DEN", "DI", "DA", "DOS", "DAS", "DEL", "DELLA", "MAC", "MC",
];

/// Values operators type when they do not know a name.
const PLACEHOLDER_NAMES: &[&str] = &[
    "INCONNU",
    "INCONNUE",
    "X",
    "XX",
    "XXX",
    "XXXX",
    "SANSNOM",
    "SANSPRENOM",
    "NC",
    "NONCOMMUNIQUE",
    "NONRENSEIGNE",
    "NR",
    "ND",
    "ANONYME",
    "NEANT",
    "NN",
    "SN",
    "SP",
    "ACOMPLETER",
    "PERSONNE",
    "MONSIEUR",
    "MADAME",
    "MR",
    "MME",
];

/// Words that introduce a usage name inside a birth-name cell ("DUPONT ÉPOUSE MARTIN").
const SPOUSE_MARKERS: &[&str] = &["EPOUSE", "EP", "EPSE", "VEUVE", "VVE", "DIVORCEE"];
/// Words that introduce a birth name inside a usage-name cell ("MARTIN NÉE DUPONT").
const BORN_MARKERS: &[&str] = &["NEE", "NE"];

/// Splits a raw name into upper-case A–Z tokens.
///
/// Accents and ligatures are folded (Œ→OE, Æ→AE, ß→SS), every apostrophe, hyphen,
/// underscore, dot and space separates, digits and other scripts are dropped.
pub fn name_tokens(raw: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let push_letter = |c: char, current: &mut String| current.push(c.to_ascii_uppercase());
    for c in raw.chars() {
        if c.is_ascii_alphabetic() {
            push_letter(c, &mut current);
        } else if c.is_ascii_digit() {
            // Digits are typing noise in names ("DUPONT2"): dropped, not separators.
        } else if c.is_ascii() || c.is_whitespace() || is_apostrophe_or_dash(c) {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        } else {
            fold_non_ascii(c, &mut current);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn is_apostrophe_or_dash(c: char) -> bool {
    matches!(
        c,
        '\u{2019}' | '\u{2018}' | '\u{00B4}' | '\u{02BC}' | '\u{2010}'..='\u{2015}' | '\u{00A0}'
    )
}

/// Folds one non-ASCII character to upper-case ASCII letters, or drops it.
fn fold_non_ascii(c: char, out: &mut String) {
    match c {
        'Œ' | 'œ' => out.push_str("OE"),
        'Æ' | 'æ' => out.push_str("AE"),
        'ß' | 'ẞ' => out.push_str("SS"),
        'Ø' | 'ø' => out.push('O'),
        'Ł' | 'ł' => out.push('L'),
        'Đ' | 'đ' | 'Ð' | 'ð' => out.push('D'),
        'ı' => out.push('I'),
        'Þ' | 'þ' => out.push_str("TH"),
        _ => decompose_compatible(c, |d| {
            if d.is_ascii_alphabetic() {
                out.push(d.to_ascii_uppercase());
            }
        }),
    }
}

/// Whether tokens are a placeholder for an unknown name ("INCONNU", "X", "SANS NOM").
pub fn is_placeholder_name(tokens: &[String]) -> bool {
    if tokens.is_empty() {
        return true;
    }
    // Compared as the tokens joined, without building the joined string (runs on every row).
    let joined = || tokens.iter().flat_map(|t| t.bytes());
    if joined().all(|b| b == b'X') {
        return true;
    }
    let len: usize = tokens.iter().map(String::len).sum();
    PLACEHOLDER_NAMES
        .iter()
        .any(|p| p.len() == len && p.bytes().eq(joined()))
}

/// Whether a token is a name particle (DE, LE, BEN, EL, …).
pub fn is_particle(token: &str) -> bool {
    PARTICLES.contains(&token)
}

/// Splits "MARTIN NÉE DUPONT" into the name used and the birth name.
fn split_born(cell: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let pos = cell
        .iter()
        .position(|t| BORN_MARKERS.contains(&t.as_str()))?;
    (pos > 0 && pos + 1 < cell.len()).then(|| (cell[..pos].to_vec(), cell[pos + 1..].to_vec()))
}

/// A person's names after normalisation: what match keys are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NormalisedNames {
    /// Birth name tokens (empty when unknown).
    pub birth: Vec<String>,
    /// Usage name tokens (empty when none or equal to the birth name).
    pub usage: Vec<String>,
    /// First given name tokens (the first comma-separated name; empty when unknown).
    pub first: Vec<String>,
}

impl NormalisedNames {
    /// Normalises the three name cells of a record.
    pub fn from_raw(birth_name: &str, usage_name: &str, first_names: &str) -> Self {
        let mut birth = name_tokens(birth_name);
        let mut usage = name_tokens(usage_name);
        // "DUPONT ÉPOUSE MARTIN" in the birth-name cell carries both names.
        if let Some(pos) = birth
            .iter()
            .position(|t| SPOUSE_MARKERS.contains(&t.as_str()))
        {
            let after: Vec<String> = birth.split_off(pos).into_iter().skip(1).collect();
            if usage.is_empty() {
                usage = after;
            }
        }
        // "MARTIN NÉE DUPONT" in either cell: the part after NÉE is the birth name.
        if let Some((used, born)) = split_born(&birth).or_else(|| split_born(&usage)) {
            birth = born;
            usage = used;
        }
        if is_placeholder_name(&birth) {
            birth.clear();
        }
        if is_placeholder_name(&usage) || usage == birth {
            usage.clear();
        }
        if birth.is_empty() && !usage.is_empty() {
            // Only a usage name is known: it is the name the person goes by.
            std::mem::swap(&mut birth, &mut usage);
        }
        let first_cell = first_names.split([',', ';', '/']).next().unwrap_or("");
        let mut first = name_tokens(first_cell);
        if is_placeholder_name(&first) {
            first.clear();
        }
        NormalisedNames {
            birth,
            usage,
            first,
        }
    }

    /// Whether some surname is known.
    pub fn has_surname(&self) -> bool {
        !self.birth.is_empty()
    }

    /// Whether a first name is known.
    pub fn has_first_name(&self) -> bool {
        !self.first.is_empty()
    }

    /// The first token of the first given name ("JEAN" for "Jean-Pierre, Marc").
    pub fn first_token(&self) -> Option<&str> {
        self.first.first().map(String::as_str)
    }

    /// Compact surname variants from the birth and usage names, most complete first.
    ///
    /// For each name: all tokens joined ("DELAFONTAINE"), then leading particles dropped one
    /// at a time ("LAFONTAINE", "FONTAINE"), then the first part of a compound name
    /// ("MARTIN" for "MARTIN-DUPONT"). At most [`MAX_SURNAME_VARIANTS`] in all.
    pub fn surname_variants(&self) -> Vec<String> {
        let (mut buf, mut ranges) = (String::new(), Vec::new());
        self.surname_variants_into(&mut buf, &mut ranges);
        ranges.into_iter().map(|r| buf[r].to_string()).collect()
    }

    /// [`NormalisedNames::surname_variants`] appended to `buf`, their ranges to `out`.
    pub fn surname_variants_into(&self, buf: &mut String, out: &mut Vec<std::ops::Range<usize>>) {
        let first_new = out.len();
        let push = |parts: &[String], buf: &mut String, out: &mut Vec<std::ops::Range<usize>>| {
            let start = buf.len();
            parts.iter().for_each(|p| buf.push_str(p));
            let new = &buf[start..];
            if new.len() < 2
                || out.len() - first_new >= MAX_SURNAME_VARIANTS
                || out[first_new..].iter().any(|r| &buf[r.clone()] == new)
            {
                buf.truncate(start);
            } else {
                out.push(start..buf.len());
            }
        };
        for tokens in [&self.birth, &self.usage] {
            if tokens.is_empty() {
                continue;
            }
            push(tokens, buf, out);
            let mut rest: &[String] = tokens;
            while rest.len() > 1 && is_particle(&rest[0]) {
                rest = &rest[1..];
                push(rest, buf, out);
            }
            let mut core = rest.iter().filter(|t| !is_particle(t));
            if let (Some(head), Some(_)) = (core.next(), core.next()) {
                if head.len() >= 3 {
                    push(std::slice::from_ref(head), buf, out);
                }
            }
        }
    }
}

/// How many surname variants a record may contribute to one key family.
pub const MAX_SURNAME_VARIANTS: usize = 4;

/// A French-tolerant phonetic skeleton of an upper-case A–Z word.
///
/// Equal for transliteration and spelling variants (MOHAMED, MOHAMMED, MUHAMMAD, MOUHAMED →
/// "MT"; DUPONT, DUPOND → "TPNT"): digraphs folded, vowels after the first letter and H
/// dropped, confusable consonants merged, doubled letters collapsed, final S/X dropped.
pub fn phonetic(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    phonetic_into(word, &mut out);
    out
}

/// [`phonetic`] appended to `out` (no allocation once `out` has room).
pub fn phonetic_into(word: &str, out: &mut String) {
    let start = out.len();
    let b = word.as_bytes();
    // Names are short: fold into a stack buffer, spilling to the heap only for long ones.
    let mut stack = [0u8; 64];
    let mut heap: Vec<u8> = Vec::new();
    let mut len = 0usize;
    let mut push_out = |bytes: &[u8]| {
        if heap.is_empty() && len + bytes.len() <= stack.len() {
            stack[len..len + bytes.len()].copy_from_slice(bytes);
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack[..len]);
            }
            heap.extend_from_slice(bytes);
        }
        len += bytes.len();
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        let (out, skip): (&[u8], usize) = match (c, next) {
            (b'P', b'H') => (b"F", 2),
            (b'Q', b'U') => (b"K", 2),
            (b'C', b'K') => (b"K", 2),
            (b'C', b'H') | (b'S', b'H') => (b"S", 2),
            (b'K', b'H') => (b"K", 2),
            (b'T', b'H') => (b"T", 2),
            (b'G', b'H') => (b"G", 2),
            (b'D', b'J') => (b"J", 2),
            (b'G', b'U') if matches!(b.get(i + 2), Some(b'E' | b'I' | b'Y')) => (b"G", 2),
            (b'G', b'N') => (b"N", 2),
            (b'C', b'E' | b'I' | b'Y') => (b"S", 1),
            (b'G', b'E' | b'I' | b'Y') => (b"J", 1),
            (b'C' | b'Q', _) => (b"K", 1),
            (b'Z', _) => (b"S", 1),
            (b'X', _) => (b"KS", 1),
            (b'W', _) => (b"V", 1),
            (b'D', _) => (b"T", 1),
            (b'Y', _) => (b"I", 1),
            _ => (std::slice::from_ref(&b[i]), 1),
        };
        push_out(out);
        i += skip;
    }
    let folded: &[u8] = if heap.is_empty() {
        &stack[..len]
    } else {
        &heap
    };
    let mut last: Option<char> = None;
    for (idx, &c) in folded.iter().enumerate() {
        let is_vowel = matches!(c, b'A' | b'E' | b'I' | b'O' | b'U');
        let ch = if idx == 0 {
            if is_vowel || c == b'H' {
                'A'
            } else {
                c as char
            }
        } else if is_vowel || c == b'H' {
            continue;
        } else {
            c as char
        };
        if last == Some(ch) && idx > 0 {
            continue;
        }
        last = Some(ch);
        out.push(ch);
    }
    if out.len() - start > 2 && out.ends_with('S') {
        out.pop();
    }
}

/// A parsed date cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    /// A full calendar date.
    Full(NaiveDate),
    /// Month and year only.
    YearMonth(i32, u32),
    /// Year only (also 00/00/YYYY and XX/XX/YYYY).
    Year(i32),
    /// Empty or explicitly unknown.
    Missing,
}

/// Why a date cell could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not a date shape Synchro knows.
    #[error("not a recognised date (expected DD/MM/YYYY, YYYY-MM-DD, an Excel date number, MM/YYYY or YYYY)")]
    Unrecognised,
    /// A date shape with an impossible day, month or year.
    #[error("impossible date (day {day}, month {month}, year {year})")]
    Impossible {
        /// Day as written.
        day: u32,
        /// Month as written.
        month: u32,
        /// Year as written.
        year: i32,
    },
    /// A year outside the plausible range.
    #[error("year {0} out of range (expected 1880 to {1})")]
    YearOutOfRange(i32, i32),
}

/// What a date is for, which decides how two-digit years are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// A birth date: "85" means 1985, and years after the reference year are impossible.
    Birth,
    /// A contact or exit date: "24" means 2024.
    Event,
}

/// Excel's day zero in the 1900 date system, accounting for its 1900 leap-year bug.
fn excel_epoch() -> NaiveDate {
    // Unwrap safety: a constant valid date.
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid constant date")
}

/// Converts an Excel serial day number (1900 date system) to a date.
pub fn excel_serial_to_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..=2_958_465.0).contains(&serial) {
        return None;
    }
    excel_epoch().checked_add_days(chrono::Days::new(serial.floor() as u64))
}

/// Parses a date cell. `reference_year` bounds plausible years (the period's year).
pub fn parse_date(raw: &str, kind: DateKind, reference_year: i32) -> Result<DateValue, DateError> {
    let s = raw.trim();
    // Compared without an upper-cased copy: four dates per row, a million rows.
    const NOT_KNOWN: [&str; 10] = [
        "-", "?", "NC", "ND", "NR", "INCONNU", "INCONNUE", "NULL", "N/A", "NA",
    ];
    if s.is_empty() || NOT_KNOWN.iter().any(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(DateValue::Missing);
    }
    // Fast path for the two shapes most exports use (DD/MM/YYYY and YYYY-MM-DD).
    if let Some(v) = parse_common_shape(s, reference_year) {
        return v;
    }
    // Excel serials written with decimals ("31861.0", "31861,5") before splitting on dots.
    if let Some((int, frac)) = s.split_once(['.', ',']) {
        if int.len() == 5
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            return parse_single_number(s, reference_year);
        }
    }
    // "2026-10-03 00:00:00" and "2026-10-03T00:00:00" as databases export them.
    let date_part = s.split([' ', 'T']).next().unwrap_or(s);
    // At most four parts are meaningful; a fifth means "not a date". No allocation per cell.
    let mut parts_buf = [""; 4];
    let mut count = 0;
    for p in date_part
        .split(['/', '-', '.'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if count == parts_buf.len() {
            return Err(DateError::Unrecognised);
        }
        parts_buf[count] = p;
        count += 1;
    }
    let parts = &parts_buf[..count];
    let check_year = |y: i32| plausible_year(y, reference_year);
    let expand_year = |p: &str| -> Result<i32, DateError> {
        let y: i32 = p.parse().map_err(|_| DateError::Unrecognised)?;
        match p.len() {
            4 => check_year(y),
            2 => {
                let century_now = reference_year - reference_year % 100;
                let candidate = century_now + y;
                Ok(match kind {
                    DateKind::Birth if candidate > reference_year => candidate - 100,
                    _ => candidate,
                })
            }
            _ => Err(DateError::Unrecognised),
        }
    };
    let unknown_part = |p: &str| p.chars().all(|c| c == '0' || c == 'X' || c == 'x');
    match parts {
        [a, b, c] => {
            let (y, m, d) = if a.len() == 4 {
                (*a, *b, *c)
            } else {
                (*c, *b, *a)
            };
            if unknown_part(y) {
                return Ok(DateValue::Missing);
            }
            let year = expand_year(y)?;
            if unknown_part(m) {
                return Ok(DateValue::Year(year));
            }
            let month: u32 = m.parse().map_err(|_| DateError::Unrecognised)?;
            if unknown_part(d) {
                return if (1..=12).contains(&month) {
                    Ok(DateValue::YearMonth(year, month))
                } else {
                    Err(DateError::Impossible {
                        day: 0,
                        month,
                        year,
                    })
                };
            }
            let day: u32 = d.parse().map_err(|_| DateError::Unrecognised)?;
            NaiveDate::from_ymd_opt(year, month, day)
                .map(DateValue::Full)
                .ok_or(DateError::Impossible { day, month, year })
        }
        [a, b] if a.len() <= 2 && b.len() == 4 => {
            let year = expand_year(b)?;
            if unknown_part(a) {
                return Ok(DateValue::Year(year));
            }
            let month: u32 = a.parse().map_err(|_| DateError::Unrecognised)?;
            if (1..=12).contains(&month) {
                Ok(DateValue::YearMonth(year, month))
            } else {
                Err(DateError::Impossible {
                    day: 0,
                    month,
                    year,
                })
            }
        }
        [a, b] if a.len() == 4 && b.len() <= 2 => {
            let year = expand_year(a)?;
            let month: u32 = b.parse().map_err(|_| DateError::Unrecognised)?;
            if (1..=12).contains(&month) {
                Ok(DateValue::YearMonth(year, month))
            } else {
                Err(DateError::Impossible {
                    day: 0,
                    month,
                    year,
                })
            }
        }
        [single] => parse_single_number(single, reference_year),
        _ => Err(DateError::Unrecognised),
    }
}

/// DD/MM/YYYY or YYYY-MM-DD with exactly those widths; `None` for any other shape.
fn parse_common_shape(s: &str, reference_year: i32) -> Option<Result<DateValue, DateError>> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = if b[2] == b'/' && b[5] == b'/' {
        (num(6..10)?, num(3..5)?, num(0..2)?)
    } else if b[4] == b'-' && b[7] == b'-' {
        (num(0..4)?, num(5..7)?, num(8..10)?)
    } else {
        return None;
    };
    // Zeroed parts (00/00/1987) have their own meaning: leave them to the general parser.
    if d == 0 || m == 0 || y == 0 {
        return None;
    }
    let year = y as i32;
    Some(plausible_year(year, reference_year).and_then(|year| {
        NaiveDate::from_ymd_opt(year, m, d)
            .map(DateValue::Full)
            .ok_or(DateError::Impossible {
                day: d,
                month: m,
                year,
            })
    }))
}

/// Accepts years from 1880 to the year after the reference year.
fn plausible_year(y: i32, reference_year: i32) -> Result<i32, DateError> {
    if (1880..=reference_year + 1).contains(&y) {
        Ok(y)
    } else {
        Err(DateError::YearOutOfRange(y, reference_year + 1))
    }
}

fn parse_single_number(s: &str, reference_year: i32) -> Result<DateValue, DateError> {
    let check_year = |y: i32| plausible_year(y, reference_year);
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
        if s == "0000" {
            return Ok(DateValue::Missing);
        }
        let y: i32 = s.parse().map_err(|_| DateError::Unrecognised)?;
        return check_year(y).map(DateValue::Year);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        // YYYYMMDD (database exports) or DDMMYYYY (typed without separators).
        let (y, m, d) = if s.starts_with("19") || s.starts_with("20") {
            (&s[0..4], &s[4..6], &s[6..8])
        } else {
            (&s[4..8], &s[2..4], &s[0..2])
        };
        let (year, month, day) = (
            y.parse::<i32>().map_err(|_| DateError::Unrecognised)?,
            m.parse::<u32>().map_err(|_| DateError::Unrecognised)?,
            d.parse::<u32>().map_err(|_| DateError::Unrecognised)?,
        );
        check_year(year)?;
        return NaiveDate::from_ymd_opt(year, month, day)
            .map(DateValue::Full)
            .ok_or(DateError::Impossible { day, month, year });
    }
    // Excel serial numbers, as a CSV written from Excel may carry them ("31856" or "31856.0").
    let serial: f64 = s
        .replace(',', ".")
        .parse()
        .map_err(|_| DateError::Unrecognised)?;
    if !(1000.0..=100_000.0).contains(&serial) {
        return Err(DateError::Unrecognised);
    }
    let date = excel_serial_to_date(serial).ok_or(DateError::Unrecognised)?;
    check_year(date.year())?;
    Ok(DateValue::Full(date))
}

/// A birth date as the match keys see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    /// The parsed value.
    pub value: DateValue,
    /// A conventional date (01/01, 31/12, 01/01/1900, 00/00/YYYY): only its year is usable.
    pub placeholder: bool,
}

impl BirthDate {
    /// Classifies a parsed birth date.
    pub fn classify(value: DateValue) -> Self {
        match value {
            DateValue::Full(d) if d.year() <= 1900 => BirthDate {
                value: DateValue::Missing,
                placeholder: true,
            },
            DateValue::Full(d)
                if (d.day(), d.month()) == (1, 1) || (d.day(), d.month()) == (31, 12) =>
            {
                BirthDate {
                    value: DateValue::Year(d.year()),
                    placeholder: true,
                }
            }
            other => BirthDate {
                value: other,
                placeholder: false,
            },
        }
    }

    /// The full date, only when it is a real one.
    pub fn exact(&self) -> Option<NaiveDate> {
        match self.value {
            DateValue::Full(d) if !self.placeholder => Some(d),
            _ => None,
        }
    }

    /// The birth year, when some year is known.
    pub fn year(&self) -> Option<i32> {
        match self.value {
            DateValue::Full(d) => Some(d.year()),
            DateValue::YearMonth(y, _) | DateValue::Year(y) => Some(y),
            DateValue::Missing => None,
        }
    }

    /// The quality flag transmitted with the record.
    pub fn quality(&self) -> crate::template::BirthDateQuality {
        use crate::template::BirthDateQuality as Q;
        match (self.value, self.placeholder) {
            (_, true) => Q::Placeholder,
            (DateValue::Full(_), false) => Q::Exact,
            (DateValue::YearMonth(..) | DateValue::Year(_), false) => Q::Approximate,
            (DateValue::Missing, false) => Q::Missing,
        }
    }
}

/// A value cell folded for lookup in a mapping profile: trimmed, lower case, accents off,
/// inner spaces collapsed ("  À la RUE " → "a la rue").
pub fn fold_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    fold_value_into(raw, &mut out);
    out
}

/// [`fold_value`] into a reusable buffer (cleared first), for per-row hot paths.
pub fn fold_value_into(raw: &str, out: &mut String) {
    out.clear();
    let mut pending_space = false;
    for c in raw.trim().chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            let mut folded = String::new();
            fold_non_ascii(c, &mut folded);
            if folded.is_empty() {
                out.extend(c.to_lowercase());
            } else {
                out.push_str(&folded.to_ascii_lowercase());
            }
        }
    }
}

#[cfg(test)]
mod tests;
