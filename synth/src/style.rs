//! Export styles: how each kind of operator's software writes its monthly export.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use crate::{NaiveDateCell, TypedIdentity};

/// The software style an operator exports with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStyle {
    /// SI-SIAO-like: `;`, UTF-8 with BOM, DD/MM/YYYY.
    Siao,
    /// A CCAS's Excel sheet saved as CSV: `;`, Windows-1252, DD/MM/YYYY, H/F, O/N.
    Ccas,
    /// A street-outreach app: `,`, UTF-8, ISO dates, template codes.
    Maraude,
    /// A hospital social service: XLSX with real Excel dates.
    Hopital,
    /// A shelter's software: `;`, UTF-8 with BOM, DD/MM/YY two-digit years.
    Chrs,
}

/// A row to write, in neutral form.
pub(crate) struct Row {
    pub local_id: String,
    pub household_id: String,
    pub identity: TypedIdentity,
    pub sex: bool,
    pub role: usize,
    pub household_size: u16,
    pub situation: usize,
    pub first_contact: NaiveDate,
    pub last_contact: NaiveDate,
    pub municipality: String,
    pub nationality: usize,
    pub admin: usize,
    pub resources: usize,
    pub siao_request: bool,
    pub social_housing_request: bool,
    pub exit: Option<(NaiveDate, usize)>,
    pub needs: Vec<usize>,
}

/// Labels of one style, indexed like the template's code lists.
struct Labels {
    headers: [&'static str; 21],
    sex: [&'static str; 2],
    role: [&'static str; 3],
    situation: [&'static str; 11],
    nationality: [&'static str; 4],
    admin: [&'static str; 7],
    resources: [&'static str; 7],
    yes_no: [&'static str; 2],
    exit: [&'static str; 8],
    needs: [&'static str; 9],
}

/// Template codes in the same order as the labels, for generated profiles.
const SITUATION_CODES: [&str; 11] = [
    "rue",
    "squat_bidonville",
    "caravane_camping",
    "hebergement_urgence",
    "hotel",
    "hebergement_insertion",
    "dna_asile",
    "logement_accompagne",
    "chez_un_tiers",
    "institution",
    "logement",
];
const ROLE_CODES: [&str; 3] = ["demandeur", "conjoint", "enfant"];
const NATIONALITY_CODES: [&str; 4] = ["francais", "ue", "hors_ue", "inconnu"];
const ADMIN_CODES: [&str; 7] = [
    "francais",
    "ue",
    "titre_sejour",
    "demandeur_asile",
    "bpi",
    "deboute_sans_titre",
    "inconnu",
];
const RESOURCE_CODES: [&str; 7] = [
    "aucune",
    "minima_sociaux",
    "salaire",
    "chomage",
    "retraite",
    "ada",
    "autres",
];
const EXIT_CODES: [&str; 8] = [
    "logement",
    "logement_accompagne",
    "hebergement",
    "chez_un_tiers",
    "institution",
    "rue",
    "depart_territoire",
    "inconnu",
];
const NEED_CODES: [&str; 9] = [
    "sante",
    "sante_mentale",
    "addictions",
    "acces_droits",
    "emploi",
    "violences",
    "parentalite",
    "alimentation_hygiene",
    "logement",
];
const FIELDS: [&str; 21] = [
    "local_id",
    "household_id",
    "birth_name",
    "usage_name",
    "first_names",
    "birth_date",
    "sex",
    "household_role",
    "household_size",
    "living_situation",
    "first_contact",
    "last_contact",
    "municipality",
    "nationality",
    "admin_status",
    "resources",
    "siao_request",
    "social_housing_request",
    "exit_date",
    "exit_destination",
    "needs",
];

const SIAO: Labels = Labels {
    headers: [
        "N° dossier",
        "N° ménage",
        "Nom de naissance",
        "Nom d'usage",
        "Prénom(s)",
        "Date de naissance",
        "Sexe",
        "Lien avec le demandeur",
        "Nb personnes ménage",
        "Situation au dernier contact",
        "Date premier contact",
        "Date dernier contact",
        "Code commune",
        "Nationalité",
        "Situation administrative",
        "Ressources",
        "Demande SIAO en cours",
        "Demande logement social",
        "Date de sortie",
        "Motif de sortie",
        "Besoins",
    ],
    sex: ["Homme", "Femme"],
    role: ["Demandeur", "Conjoint", "Enfant"],
    situation: [
        "A la rue",
        "Squat",
        "Caravane",
        "CHU",
        "Hôtel 115",
        "CHRS",
        "CADA",
        "Résidence sociale",
        "Hébergé chez un tiers",
        "Hôpital",
        "Logement autonome",
    ],
    nationality: ["Française", "UE", "Hors UE", ""],
    admin: [
        "Français",
        "Ressortissant UE",
        "Titre de séjour",
        "Demandeur d'asile",
        "Réfugié",
        "Débouté",
        "",
    ],
    resources: [
        "Aucune", "RSA", "Salaire", "ARE", "Retraite", "ADA", "Autre",
    ],
    yes_no: ["Oui", "Non"],
    exit: [
        "Logement social",
        "Résidence sociale",
        "CHRS",
        "Famille",
        "Hospitalisation",
        "Retour à la rue",
        "Départ",
        "Perdu de vue",
    ],
    needs: [
        "Santé",
        "Psy",
        "Addiction",
        "Droits",
        "Emploi",
        "Violences",
        "Enfants",
        "Alimentation",
        "Logement",
    ],
};

const CCAS: Labels = Labels {
    headers: [
        "Identifiant",
        "N° famille",
        "NOM",
        "NOM d'usage",
        "Prénom",
        "Né(e) le",
        "Sexe (H/F)",
        "Composition",
        "Nb pers.",
        "Situation hébergement",
        "1ère venue",
        "Dernière venue",
        "Commune",
        "Nationalité",
        "Statut",
        "Ressources",
        "Demande SIAO",
        "Demande HLM",
        "Date fin",
        "Orientation",
        "Besoins",
    ],
    sex: ["H", "F"],
    role: ["Chef de famille", "Conjoint(e)", "Enfant"],
    situation: [
        "Sans domicile fixe",
        "Squat",
        "Caravane",
        "Hébergement urgence",
        "Hôtel",
        "CHRS",
        "CADA",
        "Pension de famille",
        "Hébergé famille/amis",
        "Hospitalisé",
        "Locataire",
    ],
    nationality: ["Française", "CEE", "Etranger hors CEE", "NC"],
    admin: [
        "Français",
        "UE",
        "Carte de séjour",
        "Demande d'asile",
        "Statut réfugié",
        "Sans papiers",
        "NC",
    ],
    resources: [
        "Sans ressources",
        "RSA",
        "Salaire",
        "Chômage",
        "Retraite",
        "ADA",
        "Autres",
    ],
    yes_no: ["O", "N"],
    exit: [
        "Accès logement",
        "Pension de famille",
        "Hébergement",
        "Famille",
        "Hôpital",
        "Rue",
        "Déménagement",
        "Inconnu",
    ],
    needs: [
        "Santé",
        "Santé mentale",
        "Addictions",
        "Accès aux droits",
        "Emploi",
        "Violences",
        "Parentalité",
        "Aide alimentaire",
        "Logement",
    ],
};

const MARAUDE: Labels = Labels {
    headers: [
        "id",
        "famille",
        "nom",
        "nom_usage",
        "prenom",
        "naissance",
        "sexe",
        "role",
        "taille_menage",
        "lieu_de_vie",
        "premier_contact",
        "dernier_contact",
        "commune",
        "nationalite",
        "statut_admin",
        "ressources",
        "demande_siao",
        "demande_logement",
        "sortie_date",
        "sortie_motif",
        "besoins",
    ],
    sex: ["M", "F"],
    role: ROLE_CODES,
    situation: SITUATION_CODES,
    nationality: NATIONALITY_CODES,
    admin: ADMIN_CODES,
    resources: RESOURCE_CODES,
    yes_no: ["oui", "non"],
    exit: EXIT_CODES,
    needs: NEED_CODES,
};

const CHRS: Labels = Labels {
    headers: [
        "Réf",
        "Ménage",
        "Nom",
        "Nom marital",
        "Prénoms",
        "Date naiss.",
        "Genre",
        "Place dans le ménage",
        "Nb pers.",
        "Hébergement",
        "Entrée",
        "Dernier RDV",
        "INSEE commune",
        "Nationalité",
        "Situation adm.",
        "Ressources",
        "SIAO",
        "SNE",
        "Sortie le",
        "Motif sortie",
        "Besoins",
    ],
    sex: ["Masculin", "Féminin"],
    role: ["Demandeur", "Conjoint", "Enfant"],
    situation: [
        "Rue",
        "Squat",
        "Caravane",
        "Urgence",
        "Hôtel",
        "Insertion",
        "Asile",
        "Logement accompagné",
        "Chez un tiers",
        "Institution",
        "Logement",
    ],
    nationality: ["Française", "UE", "Hors UE", "Inconnue"],
    admin: [
        "Français",
        "UE",
        "Titre de séjour",
        "Demandeur d'asile",
        "BPI",
        "Débouté",
        "Inconnue",
    ],
    resources: [
        "Aucune",
        "Minima sociaux",
        "Salaire",
        "Chômage",
        "Retraite",
        "ADA",
        "Autres",
    ],
    yes_no: ["Oui", "Non"],
    exit: [
        "Logement",
        "Logement accompagné",
        "Hébergement",
        "Chez un tiers",
        "Institution",
        "Rue",
        "Départ",
        "Inconnue",
    ],
    needs: [
        "Santé",
        "Santé mentale",
        "Addictions",
        "Droits",
        "Emploi",
        "Violences",
        "Parentalité",
        "Alimentation",
        "Logement",
    ],
};

impl ExportStyle {
    /// Every style, in the order operators are assigned them.
    pub const ALL: [ExportStyle; 5] = [
        ExportStyle::Siao,
        ExportStyle::Ccas,
        ExportStyle::Maraude,
        ExportStyle::Hopital,
        ExportStyle::Chrs,
    ];

    /// A default operator id and name for the style.
    pub fn operator_name(self) -> (&'static str, &'static str) {
        match self {
            ExportStyle::Siao => ("siao-69", "SIAO du Rhône (115)"),
            ExportStyle::Ccas => ("ccas-lyon", "CCAS de Lyon"),
            ExportStyle::Maraude => ("maraude-69", "Maraude Samu social"),
            ExportStyle::Hopital => ("pass-hcl", "PASS Hospices civils"),
            ExportStyle::Chrs => ("chrs-rhone", "CHRS du Rhône"),
        }
    }

    /// The file extension the style writes.
    pub fn extension(self) -> &'static str {
        match self {
            ExportStyle::Hopital => "xlsx",
            _ => "csv",
        }
    }

    fn labels(self) -> &'static Labels {
        match self {
            ExportStyle::Siao | ExportStyle::Hopital => &SIAO,
            ExportStyle::Ccas => &CCAS,
            ExportStyle::Maraude => &MARAUDE,
            ExportStyle::Chrs => &CHRS,
        }
    }

    fn date(self, d: NaiveDate) -> String {
        match self {
            ExportStyle::Maraude => d.format("%Y-%m-%d").to_string(),
            ExportStyle::Chrs => d.format("%d/%m/%y").to_string(),
            _ => d.format("%d/%m/%Y").to_string(),
        }
    }

    fn birth(self, d: &Option<NaiveDateCell>) -> String {
        match d {
            None => String::new(),
            Some(NaiveDateCell::Year(y)) => y.to_string(),
            // Two-digit years are ambiguous for people over 100; shelters write them anyway.
            Some(NaiveDateCell::Full(d)) if self == ExportStyle::Chrs && d.year() < 1930 => {
                d.format("%d/%m/%Y").to_string()
            }
            Some(NaiveDateCell::Full(d)) => self.date(*d),
        }
    }

    /// The header row of this style.
    pub(crate) fn header_row(self) -> [&'static str; 21] {
        self.labels().headers
    }

    /// One row's cells in this style.
    pub(crate) fn row_cells(self, r: &Row) -> Vec<String> {
        self.cells(r)
    }

    fn cells(self, r: &Row) -> Vec<String> {
        let l = self.labels();
        let yn = |b: bool| l.yes_no[usize::from(!b)].to_string();
        let needs_sep = if self == ExportStyle::Maraude {
            "|"
        } else {
            ", "
        };
        vec![
            r.local_id.clone(),
            r.household_id.clone(),
            r.identity.birth_name.clone(),
            r.identity.usage_name.clone(),
            r.identity.first_names.clone(),
            self.birth(&r.identity.birth_date),
            if r.identity.sex_known {
                l.sex[usize::from(!r.sex)].to_string()
            } else {
                String::new()
            },
            l.role[r.role].to_string(),
            r.household_size.to_string(),
            l.situation[r.situation].to_string(),
            self.date(r.first_contact.min(r.last_contact)),
            self.date(r.last_contact),
            r.municipality.clone(),
            l.nationality[r.nationality].to_string(),
            l.admin[r.admin].to_string(),
            l.resources[r.resources].to_string(),
            yn(r.siao_request),
            yn(r.social_housing_request),
            r.exit.map(|(d, _)| self.date(d)).unwrap_or_default(),
            r.exit
                .map(|(_, e)| l.exit[e].to_string())
                .unwrap_or_default(),
            r.needs
                .iter()
                .map(|n| l.needs[*n])
                .collect::<Vec<_>>()
                .join(needs_sep),
        ]
    }

    /// Writes the rows in this style.
    pub(crate) fn write(self, path: &Path, rows: &[Row]) -> anyhow::Result<()> {
        let l = self.labels();
        if self == ExportStyle::Hopital {
            return write_xlsx(path, l, rows);
        }
        let delimiter = if self == ExportStyle::Maraude {
            b','
        } else {
            b';'
        };
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(l.headers)?;
        for r in rows {
            w.write_record(self.cells(r))?;
        }
        let text = String::from_utf8(w.into_inner()?)?;
        let bytes = match self {
            // Excel writes "?" for characters Windows-1252 lacks (Ş, ễ); encoding_rs would
            // write an HTML entity, whose ";" would break the CSV.
            ExportStyle::Ccas => {
                let representable: String = text
                    .chars()
                    .map(|c| {
                        let mut buf = [0u8; 4];
                        let (_, _, lossy) =
                            encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut buf));
                        if lossy {
                            '?'
                        } else {
                            c
                        }
                    })
                    .collect();
                encoding_rs::WINDOWS_1252
                    .encode(&representable)
                    .0
                    .into_owned()
            }
            ExportStyle::Maraude => text.into_bytes(),
            _ => {
                let mut b = vec![0xEF, 0xBB, 0xBF];
                b.extend_from_slice(text.as_bytes());
                b
            }
        };
        std::fs::write(path, bytes)?;
        Ok(())
    }

    /// The agent mapping profile for this style.
    pub fn profile(self) -> String {
        let l = self.labels();
        let mut s = String::from("# Mapping profile generated for a synthetic export.\n[file]\n");
        if self == ExportStyle::Maraude {
            s.push_str("list_separators = \"|\"\n");
        }
        s.push_str("\n[columns]\n");
        for (field, header) in FIELDS.iter().zip(l.headers) {
            let _ = writeln!(s, "{field} = {header:?}");
        }
        let mut section = |name: &str, labels: &[&str], codes: &[&str]| {
            let _ = writeln!(s, "\n[values.{name}]");
            for (label, code) in labels.iter().zip(codes) {
                if !label.is_empty() && label != code {
                    let _ = writeln!(s, "{label:?} = {code:?}");
                }
            }
        };
        section("sex", &l.sex, &["M", "F"]);
        section("household_role", &l.role, &ROLE_CODES);
        section("living_situation", &l.situation, &SITUATION_CODES);
        section("nationality", &l.nationality, &NATIONALITY_CODES);
        section("admin_status", &l.admin, &ADMIN_CODES);
        section("resources", &l.resources, &RESOURCE_CODES);
        section("siao_request", &l.yes_no, &["oui", "non"]);
        section("social_housing_request", &l.yes_no, &["oui", "non"]);
        section("exit_destination", &l.exit, &EXIT_CODES);
        section("needs", &l.needs, &NEED_CODES);
        s
    }
}

fn write_xlsx(path: &Path, l: &Labels, rows: &[Row]) -> anyhow::Result<()> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet();
    sheet.set_name("Export")?;
    let date_format = Format::new().set_num_format("dd/mm/yyyy");
    for (c, h) in l.headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    let style = ExportStyle::Hopital;
    let date_columns = [5usize, 10, 11, 18];
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let cells = style.cells(r);
        for (c, text) in cells.iter().enumerate() {
            let col = c as u16;
            if text.is_empty() {
                continue;
            }
            if date_columns.contains(&c) {
                if let Ok(d) = NaiveDate::parse_from_str(text, "%d/%m/%Y") {
                    let dt =
                        ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)?;
                    sheet.write_datetime_with_format(row, col, &dt, &date_format)?;
                    continue;
                }
                if let Ok(y) = text.parse::<f64>() {
                    sheet.write_number(row, col, y)?;
                    continue;
                }
            }
            if c == 8 {
                if let Ok(n) = text.parse::<f64>() {
                    sheet.write_number(row, col, n)?;
                    continue;
                }
            }
            sheet.write_string(row, col, text)?;
        }
    }
    wb.save(path)?;
    Ok(())
}
