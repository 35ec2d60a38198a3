//! Record template v1: the fields an operator transmits each month.
//!
//! Identity fields (birth name, usage name, first names, full birth date) are read by the
//! agent only to derive pseudonyms and quality flags; they never appear in [`Record`].
//! `docs/template.md` documents every field in French and English.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Version of the record template; travels in every batch header.
pub const TEMPLATE_VERSION: u32 = 1;

/// Declares a closed list of codes with their French and English labels.
///
/// One macro for every category so that parsing, labels and serialisation cannot drift.
macro_rules! code_list {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $fr:literal, $en:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $code)] $variant,)+
        }

        impl $name {
            /// Every code, in template order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The template code written on the wire.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }

            /// The code's label in French.
            pub fn label_fr(self) -> &'static str {
                match self { $($name::$variant => $fr,)+ }
            }

            /// The code's label in English.
            pub fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en,)+ }
            }

            /// Parses a template code exactly as written on the wire.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

code_list! {
    /// Living situation at the last contact (Synchro codes with SNE/INSEE/ETHOS correspondence).
    LivingSituation {
        /// Street, makeshift shelter, vehicle, station (SNE SD, ETHOS 1).
        Rue = "rue", "à la rue, abri de fortune", "rough sleeping";
        /// Squat, camp, bidonville (SNE SQUAT, ETHOS 8/11).
        SquatBidonville = "squat_bidonville", "squat, campement, bidonville", "squat or camp";
        /// Camping, caravan not chosen (SNE CAMCAR).
        CaravaneCamping = "caravane_camping", "caravane, camping", "caravan or campsite";
        /// CHU, winter places, night shelter (SNE SH, ETHOS 2/3).
        HebergementUrgence = "hebergement_urgence", "hébergement d'urgence", "emergency shelter";
        /// 115/SIAO hotel, RHVS (SNE HOT).
        Hotel = "hotel", "hôtel", "hotel";
        /// CHRS, stabilisation, ALT, LHSS (SNE SH, ETHOS 3).
        HebergementInsertion = "hebergement_insertion", "hébergement d'insertion (CHRS…)", "transitional accommodation";
        /// CAES, CADA, HUDA, CPH (asylum accommodation, ETHOS 5).
        DnaAsile = "dna_asile", "dispositif asile (DNA)", "asylum accommodation";
        /// Résidence sociale, pension de famille, FJT/FTM, IML (ETHOS 7).
        LogementAccompagne = "logement_accompagne", "logement accompagné", "supported housing";
        /// Hosted by family, friends or a private person (SNE CPE, CP, LTG).
        ChezUnTiers = "chez_un_tiers", "chez un tiers", "staying with others";
        /// Hospital, psychiatry, prison, child welfare (ETHOS 6).
        Institution = "institution", "institution (hôpital, prison…)", "institution";
        /// Ordinary housing: social or private rental, owner (SNE HLM, LP, POCC).
        Logement = "logement", "logement", "housing";
        /// Not known or contact lost.
        Inconnu = "inconnu", "inconnue", "unknown";
    }
}

impl LivingSituation {
    /// INSEE "sans-domicile": previous night rough or in an accommodation service.
    pub fn is_insee_homeless(self) -> bool {
        matches!(
            self,
            Self::Rue
                | Self::HebergementUrgence
                | Self::Hotel
                | Self::HebergementInsertion
                | Self::DnaAsile
        )
    }
}

code_list! {
    /// Sex as transmitted; unknown is transmitted as absent.
    Sex {
        /// Male.
        Male = "M", "homme", "male";
        /// Female.
        Female = "F", "femme", "female";
    }
}

code_list! {
    /// Role in the household declared by the operator.
    HouseholdRole {
        /// The person the request is about.
        Demandeur = "demandeur", "demandeur", "applicant";
        /// Spouse, partner.
        Conjoint = "conjoint", "conjoint", "partner";
        /// Child.
        Enfant = "enfant", "enfant", "child";
        /// Other adult.
        AutreAdulte = "autre_adulte", "autre adulte", "other adult";
    }
}

code_list! {
    /// Nationality group (SNE groups).
    NationalityGroup {
        /// French.
        Francais = "francais", "française", "French";
        /// European Union.
        Ue = "ue", "Union européenne", "EU";
        /// Outside the European Union.
        HorsUe = "hors_ue", "hors Union européenne", "non-EU";
        /// Not known.
        Inconnu = "inconnu", "inconnue", "unknown";
    }
}

code_list! {
    /// Coarse administrative status (sensitive: published only at coarse geography).
    AdminStatus {
        /// French national.
        Francais = "francais", "français", "French national";
        /// EU citizen.
        Ue = "ue", "citoyen UE", "EU citizen";
        /// Residence permit, receipt, APS.
        TitreSejour = "titre_sejour", "titre de séjour", "residence permit";
        /// Asylum seeker (normal, accelerated, Dublin).
        DemandeurAsile = "demandeur_asile", "demandeur d'asile", "asylum seeker";
        /// Refugee or subsidiary protection.
        Bpi = "bpi", "bénéficiaire de protection internationale", "international protection";
        /// Rejected asylum seeker or no permit.
        DebouteSansTitre = "deboute_sans_titre", "débouté ou sans titre", "no permit";
        /// Not known.
        Inconnu = "inconnu", "inconnu", "unknown";
    }
}

code_list! {
    /// Main resources of the person.
    Resources {
        /// No resources.
        Aucune = "aucune", "aucune ressource", "no income";
        /// Social minima (RSA, AAH, ASS).
        MinimaSociaux = "minima_sociaux", "minima sociaux (RSA, AAH…)", "welfare benefits";
        /// Wages.
        Salaire = "salaire", "salaire", "wages";
        /// Unemployment benefit.
        Chomage = "chomage", "allocation chômage", "unemployment benefit";
        /// Pension.
        Retraite = "retraite", "retraite", "pension";
        /// Asylum seeker allowance (ADA).
        Ada = "ada", "allocation pour demandeur d'asile", "asylum allowance";
        /// Other resources.
        Autres = "autres", "autres ressources", "other income";
        /// Not known.
        Inconnu = "inconnu", "inconnues", "unknown";
    }
}

code_list! {
    /// Where the person went when the operator closed the follow-up.
    ExitDestination {
        /// Ordinary housing.
        Logement = "logement", "logement", "housing";
        /// Supported housing.
        LogementAccompagne = "logement_accompagne", "logement accompagné", "supported housing";
        /// Shelter or accommodation.
        Hebergement = "hebergement", "hébergement", "accommodation";
        /// Staying with others.
        ChezUnTiers = "chez_un_tiers", "chez un tiers", "staying with others";
        /// Institution (hospital, prison…).
        Institution = "institution", "institution", "institution";
        /// Back to the street.
        Rue = "rue", "retour à la rue", "back to the street";
        /// Left the territory.
        DepartTerritoire = "depart_territoire", "départ du territoire", "left the area";
        /// Death.
        Deces = "deces", "décès", "death";
        /// Not known, lost contact.
        Inconnu = "inconnu", "inconnue", "unknown";
    }
}

code_list! {
    /// Needs tags (several per record).
    Need {
        /// Physical health.
        Sante = "sante", "santé", "health";
        /// Mental health.
        SanteMentale = "sante_mentale", "santé mentale", "mental health";
        /// Addictions.
        Addictions = "addictions", "addictions", "addictions";
        /// Rights, papers, domiciliation.
        AccesDroits = "acces_droits", "accès aux droits", "access to rights";
        /// Employment, training.
        Emploi = "emploi", "emploi, formation", "employment";
        /// Violence, protection.
        Violences = "violences", "violences", "violence";
        /// Parenting, children.
        Parentalite = "parentalite", "parentalité", "parenting";
        /// Food, hygiene.
        AlimentationHygiene = "alimentation_hygiene", "alimentation, hygiène", "food and hygiene";
        /// Housing search.
        Logement = "logement", "recherche de logement", "housing search";
    }
}

code_list! {
    /// How complete the identity behind the match keys is (derived by the agent).
    NameQuality {
        /// Birth or usage name and a first name.
        Full = "full", "identité complète", "full identity";
        /// Only a surname or only a first name.
        Partial = "partial", "identité partielle", "partial identity";
        /// Street name, alias or code name flagged by the operator.
        StreetName = "street_name", "nom d'usage de rue ou alias", "street name or alias";
        /// No usable name (empty, INCONNU, X…).
        Missing = "missing", "nom absent", "no name";
    }
}

code_list! {
    /// How reliable the birth date behind the match keys is (derived by the agent).
    BirthDateQuality {
        /// A real full date.
        Exact = "exact", "date exacte", "exact date";
        /// Year only, or month and year.
        Approximate = "approximate", "date approximative", "approximate date";
        /// A conventional date (01/01/YYYY, 31/12/YYYY, 01/01/1900, 00/00/YYYY).
        Placeholder = "placeholder", "date conventionnelle", "placeholder date";
        /// No birth date.
        Missing = "missing", "date absente", "no date";
    }
}

code_list! {
    /// Age band transmitted instead of the birth year when minimisation asks for it.
    AgeBand {
        /// Under 3.
        Under3 = "0-2", "moins de 3 ans", "under 3";
        /// 3 to 17.
        Minor = "3-17", "3-17 ans", "3-17";
        /// 18 to 24.
        Young = "18-24", "18-24 ans", "18-24";
        /// 25 to 34.
        A25 = "25-34", "25-34 ans", "25-34";
        /// 35 to 49.
        A35 = "35-49", "35-49 ans", "35-49";
        /// 50 to 64.
        A50 = "50-64", "50-64 ans", "50-64";
        /// 65 and over.
        Senior = "65+", "65 ans et plus", "65 and over";
    }
}

impl AgeBand {
    /// The band for an age in whole years.
    pub fn from_age(age: i32) -> Self {
        match age {
            i32::MIN..=2 => Self::Under3,
            3..=17 => Self::Minor,
            18..=24 => Self::Young,
            25..=34 => Self::A25,
            35..=49 => Self::A35,
            50..=64 => Self::A50,
            _ => Self::Senior,
        }
    }
}

/// What the agent transmits about the birth date (data minimisation setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BirthDateMinimisation {
    /// Birth year only (default): needed for age indicators and as linkage evidence.
    #[default]
    BirthYear,
    /// Age band at the end of the period only.
    AgeBand,
}

/// One transmitted record: pseudonyms and non-identifying attributes, nothing else.
///
/// Wire names are short on purpose (`sit` for the living situation…): they are a third of a
/// batch's bytes, and every byte is serialised, encrypted and hashed a million times.
/// `docs/template.md` gives each short name with its long name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Per-operator keyed reference of the operator's record id.
    #[serde(rename = "ref")]
    pub record_ref: String,
    /// Per-operator keyed reference of the operator's household id.
    #[serde(rename = "hh", default, skip_serializing_if = "Option::is_none")]
    pub household_ref: Option<String>,
    /// Match keys by family (see `pseudonym::KeyFamily`).
    #[serde(rename = "k")]
    pub keys: crate::pseudonym::MatchKeys,
    /// Quality of the name behind the keys.
    #[serde(rename = "nq")]
    pub name_quality: NameQuality,
    /// Quality of the birth date behind the keys.
    #[serde(rename = "dq")]
    pub birth_date_quality: BirthDateQuality,
    /// Sex, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// Birth year (minimisation `birth_year`).
    #[serde(rename = "by", default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<i32>,
    /// Age band at the end of the period (minimisation `age_band`).
    #[serde(rename = "ab", default, skip_serializing_if = "Option::is_none")]
    pub age_band: Option<AgeBand>,
    /// Role in the household.
    #[serde(rename = "role", default, skip_serializing_if = "Option::is_none")]
    pub household_role: Option<HouseholdRole>,
    /// Number of people in the household, as declared.
    #[serde(rename = "hs", default, skip_serializing_if = "Option::is_none")]
    pub household_size: Option<u16>,
    /// Living situation at the last contact.
    #[serde(rename = "sit")]
    pub living_situation: LivingSituation,
    /// First contact with this operator.
    #[serde(rename = "fc", default, skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<NaiveDate>,
    /// Last contact with this operator (within or before the period).
    #[serde(rename = "lc")]
    pub last_contact: NaiveDate,
    /// INSEE municipality code (COG) of the last contact.
    #[serde(rename = "com", default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// Nationality group.
    #[serde(rename = "nat", default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<NationalityGroup>,
    /// Administrative status.
    #[serde(rename = "adm", default, skip_serializing_if = "Option::is_none")]
    pub admin_status: Option<AdminStatus>,
    /// Main resources.
    #[serde(rename = "res", default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// A SIAO request is pending.
    #[serde(rename = "siao", default, skip_serializing_if = "Option::is_none")]
    pub siao_request: Option<bool>,
    /// A social-housing request (SNE) is pending.
    #[serde(rename = "sne", default, skip_serializing_if = "Option::is_none")]
    pub social_housing_request: Option<bool>,
    /// Date the operator closed the follow-up.
    #[serde(rename = "xd", default, skip_serializing_if = "Option::is_none")]
    pub exit_date: Option<NaiveDate>,
    /// Where the person went.
    #[serde(rename = "xdest", default, skip_serializing_if = "Option::is_none")]
    pub exit_destination: Option<ExitDestination>,
    /// Needs tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Need>,
}

/// A template field as an operator's export may provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Operator's record id (never sent; becomes `record_ref`).
    LocalId,
    /// Operator's household id (never sent; becomes `household_ref`).
    HouseholdId,
    /// Birth name (identity: keys only).
    BirthName,
    /// Usage name (identity: keys only).
    UsageName,
    /// First names (identity: keys only).
    FirstNames,
    /// Birth date (identity: keys, and year or age band).
    BirthDate,
    /// The operator flags the name as an alias or street name.
    AliasFlag,
    /// Sex.
    Sex,
    /// Household role.
    HouseholdRole,
    /// Household size.
    HouseholdSize,
    /// Living situation at last contact.
    LivingSituation,
    /// First contact date.
    FirstContact,
    /// Last contact date.
    LastContact,
    /// INSEE municipality code.
    Municipality,
    /// Nationality group.
    Nationality,
    /// Administrative status.
    AdminStatus,
    /// Resources.
    Resources,
    /// Pending SIAO request.
    SiaoRequest,
    /// Pending social-housing request.
    SocialHousingRequest,
    /// Exit date.
    ExitDate,
    /// Exit destination.
    ExitDestination,
    /// Needs (several values in one cell).
    Needs,
}

impl Field {
    /// Every field in template order.
    pub const ALL: &'static [Field] = &[
        Field::LocalId,
        Field::HouseholdId,
        Field::BirthName,
        Field::UsageName,
        Field::FirstNames,
        Field::BirthDate,
        Field::AliasFlag,
        Field::Sex,
        Field::HouseholdRole,
        Field::HouseholdSize,
        Field::LivingSituation,
        Field::FirstContact,
        Field::LastContact,
        Field::Municipality,
        Field::Nationality,
        Field::AdminStatus,
        Field::Resources,
        Field::SiaoRequest,
        Field::SocialHousingRequest,
        Field::ExitDate,
        Field::ExitDestination,
        Field::Needs,
    ];

    /// Position of the field in [`Field::ALL`], for table lookups.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The field's name in mapping profiles.
    pub fn name(self) -> &'static str {
        match self {
            Field::LocalId => "local_id",
            Field::HouseholdId => "household_id",
            Field::BirthName => "birth_name",
            Field::UsageName => "usage_name",
            Field::FirstNames => "first_names",
            Field::BirthDate => "birth_date",
            Field::AliasFlag => "alias_flag",
            Field::Sex => "sex",
            Field::HouseholdRole => "household_role",
            Field::HouseholdSize => "household_size",
            Field::LivingSituation => "living_situation",
            Field::FirstContact => "first_contact",
            Field::LastContact => "last_contact",
            Field::Municipality => "municipality",
            Field::Nationality => "nationality",
            Field::AdminStatus => "admin_status",
            Field::Resources => "resources",
            Field::SiaoRequest => "siao_request",
            Field::SocialHousingRequest => "social_housing_request",
            Field::ExitDate => "exit_date",
            Field::ExitDestination => "exit_destination",
            Field::Needs => "needs",
        }
    }

    /// Whether an export must have a column for this field.
    pub fn column_required(self) -> bool {
        matches!(
            self,
            Field::LocalId
                | Field::BirthName
                | Field::FirstNames
                | Field::BirthDate
                | Field::Sex
                | Field::LivingSituation
                | Field::LastContact
        )
    }

    /// Whether the field is an identity read only to derive pseudonyms.
    pub fn is_identity(self) -> bool {
        matches!(
            self,
            Field::BirthName | Field::UsageName | Field::FirstNames | Field::BirthDate
        )
    }

    /// Parses a profile field name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in LivingSituation::ALL {
            assert_eq!(LivingSituation::from_code(s.code()), Some(*s));
        }
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(Field::from_name(f.name()), Some(*f));
            assert_eq!(f.index(), i);
        }
    }

    #[test]
    fn age_bands() {
        assert_eq!(AgeBand::from_age(0), AgeBand::Under3);
        assert_eq!(AgeBand::from_age(17), AgeBand::Minor);
        assert_eq!(AgeBand::from_age(18), AgeBand::Young);
        assert_eq!(AgeBand::from_age(80), AgeBand::Senior);
    }
}

/// Appends a JSON string literal known to need no escaping: template codes, base64url keys and
/// references (the hot path of a million-row batch).
fn push_json_code(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-+".contains(&b)));
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends a JSON string literal, escaping only when needed (wire values are almost always
/// plain ASCII codes, dates and base64url).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f);
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Unwrap safety: serialising a &str into a Vec cannot fail.
        serde_json::to_writer(&mut *out, s).expect("string serialises");
    }
}

/// Writes flat keys (sorted by family) as the `k` object's members.
fn write_flat_keys(out: &mut Vec<u8>, flat: &[crate::pseudonym::KeyValue]) {
    let mut current = None;
    for kv in flat {
        if current != Some(kv.family) {
            if current.is_some() {
                out.extend_from_slice(b"],");
            }
            push_json_code(out, kv.family.code());
            out.extend_from_slice(b":[");
            current = Some(kv.family);
        } else {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(kv.as_bytes());
        out.push(b'"');
    }
    if current.is_some() {
        out.push(b']');
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits, without allocating (the
/// wire writer and the match-key inputs both write numbers this way).
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut v: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start.min(digits.len() - width.min(digits.len()))..]);
}

fn push_date(out: &mut Vec<u8>, d: NaiveDate) {
    use chrono::Datelike;
    let (y, m, day) = (d.year(), d.month(), d.day());
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'"',
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (day / 10) as u8,
            b'0' + (day % 10) as u8,
            b'"',
        ]);
    } else {
        // Unwrap safety: a date always serialises.
        serde_json::to_writer(&mut *out, &d).expect("date serialises");
    }
}

impl Record {
    /// Appends the record as one JSON object, byte for byte what `serde_json` writes for it.
    ///
    /// The agent serialises a million records per run; this writer skips serde's generic
    /// machinery (a property test checks it against `serde_json`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_inner(out, None);
    }

    /// Like [`Record::write_json`], with the keys given flat (as `derive_into` makes them,
    /// sorted by family) instead of `self.keys`: the agent's allocation-free path.
    pub fn write_json_with_keys(&self, out: &mut Vec<u8>, keys: &[crate::pseudonym::KeyValue]) {
        self.write_json_inner(out, Some(keys));
    }

    fn write_json_inner(
        &self,
        out: &mut Vec<u8>,
        flat_keys: Option<&[crate::pseudonym::KeyValue]>,
    ) {
        out.extend_from_slice(b"{\"ref\":");
        push_json_code(out, &self.record_ref);
        if let Some(hh) = &self.household_ref {
            out.extend_from_slice(b",\"hh\":");
            push_json_code(out, hh);
        }
        out.extend_from_slice(b",\"k\":{");
        match flat_keys {
            Some(flat) => write_flat_keys(out, flat),
            None => {
                for (i, (family, values)) in self.keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_json_code(out, family.code());
                    out.extend_from_slice(b":[");
                    for (j, v) in values.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        push_json_str(out, v);
                    }
                    out.push(b']');
                }
            }
        }
        out.extend_from_slice(b"},\"nq\":");
        push_json_code(out, self.name_quality.code());
        out.extend_from_slice(b",\"dq\":");
        push_json_code(out, self.birth_date_quality.code());
        let field = |name: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name);
            out.extend_from_slice(b"\":");
        };
        if let Some(v) = self.sex {
            field(b"sex", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.birth_year {
            field(b"by", out);
            match u32::try_from(v) {
                Ok(year) => push_decimal(out, year, 1),
                Err(_) => out.extend_from_slice(v.to_string().as_bytes()),
            }
        }
        if let Some(v) = self.age_band {
            field(b"ab", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.household_role {
            field(b"role", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.household_size {
            field(b"hs", out);
            push_decimal(out, u32::from(v), 1);
        }
        field(b"sit", out);
        push_json_code(out, self.living_situation.code());
        if let Some(v) = self.first_contact {
            field(b"fc", out);
            push_date(out, v);
        }
        field(b"lc", out);
        push_date(out, self.last_contact);
        if let Some(v) = &self.municipality {
            field(b"com", out);
            push_json_str(out, v);
        }
        if let Some(v) = self.nationality {
            field(b"nat", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.admin_status {
            field(b"adm", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.resources {
            field(b"res", out);
            push_json_code(out, v.code());
        }
        if let Some(v) = self.siao_request {
            field(b"siao", out);
            out.extend_from_slice(if v { b"true" } else { b"false" });
        }
        if let Some(v) = self.social_housing_request {
            field(b"sne", out);
            out.extend_from_slice(if v { b"true" } else { b"false" });
        }
        if let Some(v) = self.exit_date {
            field(b"xd", out);
            push_date(out, v);
        }
        if let Some(v) = self.exit_destination {
            field(b"xdest", out);
            push_json_code(out, v.code());
        }
        if !self.needs.is_empty() {
            field(b"needs", out);
            out.push(b'[');
            for (i, n) in self.needs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_code(out, n.code());
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;
    use crate::pseudonym::{KeyFamily, MatchKeys};
    use proptest::prelude::*;

    fn pick<T: Copy>(all: &[T], i: usize) -> T {
        all[i % all.len()]
    }

    proptest! {
        #[test]
        fn hand_written_json_equals_serde(
            seed in proptest::collection::vec(0usize..1000, 24),
            optional in proptest::collection::vec(any::<bool>(), 16),
            muni in "[0-9]{2}[0-9AB][0-9]{2}|\"x\\\\y\u{e9}",
            by in 1890i32..2026,
            days in 0u32..20000,
        ) {
            let date = |k: u32| NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Days::new(u64::from((days + k) % 20000));
            let mut keys = MatchKeys::new();
            for (i, f) in KeyFamily::ALL.iter().enumerate() {
                if optional[i % optional.len()] {
                    keys.insert(*f, (0..(seed[i] % 3 + 1)).map(|j| format!("k{i}_{j}")).collect());
                }
            }
            let o = |i: usize| optional[i % optional.len()];
            let r = Record {
                record_ref: format!("r_{}", seed[0]),
                household_ref: o(0).then(|| format!("h_{}", seed[1])),
                keys,
                name_quality: pick(NameQuality::ALL, seed[2]),
                birth_date_quality: pick(BirthDateQuality::ALL, seed[3]),
                sex: o(1).then(|| pick(Sex::ALL, seed[4])),
                birth_year: o(2).then_some(by),
                age_band: o(3).then(|| pick(AgeBand::ALL, seed[5])),
                household_role: o(4).then(|| pick(HouseholdRole::ALL, seed[6])),
                household_size: o(5).then_some((seed[7] % 30) as u16 + 1),
                living_situation: pick(LivingSituation::ALL, seed[8]),
                first_contact: o(6).then(|| date(1)),
                last_contact: date(2),
                municipality: o(7).then(|| muni.clone()),
                nationality: o(8).then(|| pick(NationalityGroup::ALL, seed[9])),
                admin_status: o(9).then(|| pick(AdminStatus::ALL, seed[10])),
                resources: o(10).then(|| pick(Resources::ALL, seed[11])),
                siao_request: o(11).then_some(seed[12] % 2 == 0),
                social_housing_request: o(12).then_some(seed[13] % 2 == 0),
                exit_date: o(13).then(|| date(3)),
                exit_destination: o(14).then(|| pick(ExitDestination::ALL, seed[14])),
                needs: if o(15) { vec![pick(Need::ALL, seed[15]), pick(Need::ALL, seed[16] + 1)] } else { vec![] },
            };
            let mut mine = Vec::new();
            r.write_json(&mut mine);
            prop_assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(&r).unwrap());
        }
    }
}
