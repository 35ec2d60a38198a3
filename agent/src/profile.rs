//! Mapping profiles: how one operator's export maps to the record template.
//!
//! A profile names the export's column for each template field and translates the export's
//! own values ("à la rue", "SDF") to template codes (`rue`). Values are matched after folding
//! (case, accents, spaces), so "À LA RUE" and "a la rue" need one line.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use synchro_shared::normalise::fold_value;
use synchro_shared::settings::{load_toml, parse_toml, SettingsError};
use synchro_shared::template::{
    AdminStatus, ExitDestination, Field, HouseholdRole, LivingSituation, NationalityGroup, Need,
    Resources, Sex,
};

/// A profile problem naming the file, the key and the fix.
pub type ProfileError = SettingsError;

/// How the export file is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// `auto` (by extension and content), `csv` or `xlsx` (default `auto`).
    #[serde(default = "auto")]
    pub format: String,
    /// `auto` (UTF-8 with or without BOM, else Windows-1252), `utf-8` or `windows-1252` (default `auto`).
    #[serde(default = "auto")]
    pub encoding: String,
    /// `auto` (from the header line), `;`, `,` or `\t` (default `auto`).
    #[serde(default = "auto")]
    pub delimiter: String,
    /// XLSX sheet name (default: the first sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Characters separating several values in one cell, for needs (default `,;|+`).
    #[serde(default = "default_list_separators")]
    pub list_separators: String,
}

fn auto() -> String {
    "auto".into()
}
fn default_list_separators() -> String {
    ",;|+".into()
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            format: auto(),
            encoding: auto(),
            delimiter: auto(),
            sheet: None,
            list_separators: default_list_separators(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    file: FileOptions,
    columns: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// File reading options.
    pub file: FileOptions,
    /// Export column header for each mapped field.
    pub columns: BTreeMap<Field, String>,
    /// Folded export value → template code, per field.
    pub values: HashMap<Field, HashMap<String, String>>,
}

/// The template codes a field's values must map to, when it is a coded field.
pub fn allowed_codes(field: Field) -> Option<Vec<&'static str>> {
    fn codes<T: Copy>(all: &[T], code: fn(T) -> &'static str) -> Option<Vec<&'static str>> {
        Some(all.iter().map(|v| code(*v)).collect())
    }
    match field {
        Field::Sex => codes(Sex::ALL, Sex::code),
        Field::HouseholdRole => codes(HouseholdRole::ALL, HouseholdRole::code),
        Field::LivingSituation => codes(LivingSituation::ALL, LivingSituation::code),
        Field::Nationality => codes(NationalityGroup::ALL, NationalityGroup::code),
        Field::AdminStatus => codes(AdminStatus::ALL, AdminStatus::code),
        Field::Resources => codes(Resources::ALL, Resources::code),
        Field::ExitDestination => codes(ExitDestination::ALL, ExitDestination::code),
        Field::Needs => codes(Need::ALL, Need::code),
        Field::AliasFlag | Field::SiaoRequest | Field::SocialHousingRequest => {
            Some(vec!["oui", "non"])
        }
        _ => None,
    }
}

/// The code every coded field accepts for "not known" (mapped to an absent value).
pub const UNKNOWN_CODE: &str = "inconnu";

impl Profile {
    /// Loads and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let raw: ProfileFile = load_toml(path, "check `export.profile` in agent.toml")?;
        Self::validate(raw, path)
    }

    /// Parses and validates profile text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        Self::validate(parse_toml(text, path)?, path)
    }

    fn validate(raw: ProfileFile, path: &Path) -> Result<Self, ProfileError> {
        let invalid = |key: String, message: String| SettingsError::invalid(path, key, message);
        let field_list = || {
            Field::ALL
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut columns = BTreeMap::new();
        for (name, header) in raw.columns {
            let field = Field::from_name(&name).ok_or_else(|| {
                invalid(
                    format!("columns.{name}"),
                    format!("not a template field; expected one of {}", field_list()),
                )
            })?;
            if !header.trim().is_empty() {
                columns.insert(field, header);
            }
        }
        for field in Field::ALL.iter().filter(|f| f.column_required()) {
            if !columns.contains_key(field) {
                return Err(invalid(
                    format!("columns.{}", field.name()),
                    "this template field is mandatory: give the header of the export column that holds it".into(),
                ));
            }
        }
        let mut values = HashMap::new();
        for (name, map) in raw.values {
            let field = Field::from_name(&name).ok_or_else(|| {
                invalid(
                    format!("values.{name}"),
                    format!("not a template field; expected one of {}", field_list()),
                )
            })?;
            let allowed = allowed_codes(field);
            let mut folded = HashMap::new();
            for (source, code) in map {
                let ok = match &allowed {
                    Some(codes) => codes.contains(&code.as_str()) || code == UNKNOWN_CODE,
                    None if field == Field::Municipality => is_municipality_code(&code),
                    None => false,
                };
                if !ok {
                    let expected = match &allowed {
                        Some(codes) => format!("one of {}, or {UNKNOWN_CODE}", codes.join(", ")),
                        None if field == Field::Municipality => {
                            "a 5-character INSEE code such as 69123".into()
                        }
                        None => "nothing: this field's values are not mapped".into(),
                    };
                    return Err(invalid(
                        format!("values.{name}.{source:?}"),
                        format!("{code:?} is not a valid code; expected {expected}"),
                    ));
                }
                folded.insert(fold_value(&source), code);
            }
            values.insert(field, folded);
        }
        if raw.file.delimiter != "auto"
            && ![";", ",", "\t", "|"].contains(&raw.file.delimiter.as_str())
        {
            return Err(invalid(
                "file.delimiter".into(),
                "expected auto, \";\", \",\", \"\\t\" or \"|\"".into(),
            ));
        }
        if !["auto", "utf-8", "windows-1252"].contains(&raw.file.encoding.as_str()) {
            return Err(invalid(
                "file.encoding".into(),
                "expected auto, utf-8 or windows-1252".into(),
            ));
        }
        if !["auto", "csv", "xlsx"].contains(&raw.file.format.as_str()) {
            return Err(invalid(
                "file.format".into(),
                "expected auto, csv or xlsx".into(),
            ));
        }
        Ok(Profile {
            file: raw.file,
            columns,
            values,
        })
    }
}

/// Whether a value is an INSEE municipality code (5 characters, Corsica 2A/2B included).
pub fn is_municipality_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[0].is_ascii_digit()
        && (b[1].is_ascii_digit() || matches!(b[1], b'A' | b'B' | b'a' | b'b'))
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// A starter profile written by `init`, with typical French export headers.
pub const STARTER: &str = include_str!("../profile.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_profile_is_valid() {
        let p = Profile::parse(STARTER, Path::new("profile.toml")).unwrap();
        assert_eq!(p.columns[&Field::LocalId], "N° dossier");
        assert_eq!(p.values[&Field::LivingSituation]["a la rue"], "rue");
    }

    #[test]
    fn errors_name_the_key() {
        let base = "[columns]\nlocal_id='a'\nbirth_name='b'\nfirst_names='c'\nbirth_date='d'\nsex='e'\nliving_situation='f'\nlast_contact='g'\n";
        let e = Profile::parse(&format!("{base}colour='x'\n"), Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("columns.colour"), "{e}");
        let e = Profile::parse(
            &format!("{base}[values.living_situation]\n'SDF'='rues'\n"),
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("\"rues\" is not a valid code"),
            "{e}"
        );
        let e = Profile::parse(&base.replace("sex='e'\n", ""), Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("columns.sex"), "{e}");
    }
}
