use super::*;
use proptest::prelude::*;

fn toks(s: &str) -> Vec<String> {
    name_tokens(s)
}

#[test]
fn french_name_shapes() {
    let cases: &[(&str, &[&str])] = &[
        ("Dupont", &["DUPONT"]),
        ("  de la   Fontaine ", &["DE", "LA", "FONTAINE"]),
        ("D'Almeida", &["D", "ALMEIDA"]),
        ("d’Estaing", &["D", "ESTAING"]),
        ("N'Diaye", &["N", "DIAYE"]),
        ("Lefèvre-Pontalis", &["LEFEVRE", "PONTALIS"]),
        ("MARTIN--DUPONT", &["MARTIN", "DUPONT"]),
        ("Œuvray", &["OEUVRAY"]),
        ("Lætitia", &["LAETITIA"]),
        ("Strauß", &["STRAUSS"]),
        ("Çelik", &["CELIK"]),
        ("Nguyễn", &["NGUYEN"]),
        ("Łukasz", &["LUKASZ"]),
        ("Dupont2", &["DUPONT"]),
        ("jean_pierre", &["JEAN", "PIERRE"]),
        ("Ben Ali", &["BEN", "ALI"]),
        ("El-Khoury", &["EL", "KHOURY"]),
        ("Aït Ouarab", &["AIT", "OUARAB"]),
        ("Müller", &["MULLER"]),
        ("Ørsted", &["ORSTED"]),
        ("ÉLODIE", &["ELODIE"]),
        ("Ould Mohamed", &["OULD", "MOHAMED"]),
        ("van der Berg", &["VAN", "DER", "BERG"]),
    ];
    for (raw, want) in cases {
        assert_eq!(toks(raw), want.to_vec(), "{raw}");
    }
}

#[test]
fn placeholders_are_missing() {
    for raw in [
        "INCONNU",
        "x",
        "XXX",
        "*",
        "",
        "Sans nom",
        "N.C.",
        "?",
        "  -  ",
        "Non communiqué",
    ] {
        assert!(is_placeholder_name(&toks(raw)), "{raw:?}");
    }
    for raw in ["Xu", "Ng", "Li"] {
        assert!(!is_placeholder_name(&toks(raw)), "{raw:?}");
    }
    let n = NormalisedNames::from_raw("INCONNU", "", "X");
    assert!(!n.has_surname() && !n.has_first_name());
}

#[test]
fn spouse_markers_split_birth_and_usage_names() {
    let n = NormalisedNames::from_raw("Dupont épouse Martin", "", "Marie, Anne");
    assert_eq!(n.birth, vec!["DUPONT"]);
    assert_eq!(n.usage, vec!["MARTIN"]);
    assert_eq!(n.first, vec!["MARIE"]);
    let n = NormalisedNames::from_raw("", "Martin née Dupont", "Marie");
    assert_eq!(n.birth, vec!["DUPONT"]);
    assert_eq!(n.usage, vec!["MARTIN"]);
    let n = NormalisedNames::from_raw("", "Martin", "Marie");
    assert_eq!(
        n.birth,
        vec!["MARTIN"],
        "a lone usage name is the name used"
    );
    let n = NormalisedNames::from_raw("Martin", "MARTIN", "Marie");
    assert!(n.usage.is_empty(), "usage equal to birth name is dropped");
}

#[test]
fn first_names_take_the_first_given_name() {
    assert_eq!(
        NormalisedNames::from_raw("A", "", "Jean-Pierre, Marc").first,
        vec!["JEAN", "PIERRE"]
    );
    assert_eq!(
        NormalisedNames::from_raw("A", "", "Jean-Pierre, Marc").first_token(),
        Some("JEAN")
    );
    assert_eq!(
        NormalisedNames::from_raw("A", "", "Jean Pierre").first_token(),
        Some("JEAN")
    );
    assert_eq!(
        NormalisedNames::from_raw("A", "", "Anne;Marie").first,
        vec!["ANNE"]
    );
}

#[test]
fn surname_variants_cover_particles_and_compounds() {
    let v = NormalisedNames::from_raw("de la Fontaine", "", "Jean").surname_variants();
    assert_eq!(v, vec!["DELAFONTAINE", "LAFONTAINE", "FONTAINE"]);
    let v = NormalisedNames::from_raw("Ben Ali", "", "Karim").surname_variants();
    assert_eq!(v, vec!["BENALI", "ALI"]);
    let v = NormalisedNames::from_raw("Benali", "", "Karim").surname_variants();
    assert_eq!(v, vec!["BENALI"]);
    let v = NormalisedNames::from_raw("Martin-Dupont", "", "Léa").surname_variants();
    assert_eq!(v, vec!["MARTINDUPONT", "MARTIN"]);
    let v = NormalisedNames::from_raw("Dupont", "Martin", "Léa").surname_variants();
    assert_eq!(v, vec!["DUPONT", "MARTIN"]);
    assert!(v.len() <= MAX_SURNAME_VARIANTS);
}

#[test]
fn phonetic_variants_agree() {
    let groups: &[&[&str]] = &[
        &[
            "MOHAMED", "MOHAMMED", "MUHAMMAD", "MOUHAMED", "MOHAMMAD", "MOHAMMAD",
        ],
        &["DUPONT", "DUPOND"],
        &["YOUSSEF", "YOUSEF", "YUSEF"],
        &["PHILIPPE", "FILIPE", "PHILIPE"],
        &["KARIM", "CARIM", "KARIME"],
        &["ABDELKADER", "ABDELQADER", "ABDELKADEUR"],
        &["CATHERINE", "KATHERINE", "CATHERINNE"],
        &["DUBOIS", "DUBOI"],
        &["OUSMANE", "USMANE"],
    ];
    for group in groups {
        let first = phonetic(group[0]);
        for w in *group {
            assert_eq!(phonetic(w), first, "{w} vs {}", group[0]);
        }
    }
    assert_ne!(phonetic("MARTIN"), phonetic("BERNARD"));
    assert_ne!(phonetic("PAUL"), phonetic("PIERRE"));
}

#[test]
fn dates_in_every_shape() {
    let d = |y, m, day| DateValue::Full(NaiveDate::from_ymd_opt(y, m, day).unwrap());
    let cases: &[(&str, DateValue)] = &[
        ("25/03/1987", d(1987, 3, 25)),
        ("5/3/1987", d(1987, 3, 5)),
        ("25-03-1987", d(1987, 3, 25)),
        ("25.03.1987", d(1987, 3, 25)),
        ("1987-03-25", d(1987, 3, 25)),
        ("1987/03/25", d(1987, 3, 25)),
        ("1987-03-25 00:00:00", d(1987, 3, 25)),
        ("1987-03-25T00:00:00", d(1987, 3, 25)),
        ("19870325", d(1987, 3, 25)),
        ("25031987", d(1987, 3, 25)),
        ("31861", d(1987, 3, 25)),
        ("31861.0", d(1987, 3, 25)),
        ("25/03/87", d(1987, 3, 25)),
        ("03/1987", DateValue::YearMonth(1987, 3)),
        ("1987-03", DateValue::YearMonth(1987, 3)),
        ("1987", DateValue::Year(1987)),
        ("00/00/1987", DateValue::Year(1987)),
        ("XX/XX/1987", DateValue::Year(1987)),
        ("00/03/1987", DateValue::YearMonth(1987, 3)),
        ("00/00/0000", DateValue::Missing),
        ("", DateValue::Missing),
        ("NC", DateValue::Missing),
    ];
    for (raw, want) in cases {
        assert_eq!(parse_date(raw, DateKind::Birth, 2026), Ok(*want), "{raw}");
    }
    assert_eq!(
        parse_date("03/10/24", DateKind::Event, 2026),
        Ok(d(2024, 10, 3))
    );
    assert_eq!(
        parse_date("03/10/30", DateKind::Birth, 2026),
        Ok(d(1930, 10, 3))
    );
}

#[test]
fn bad_dates_are_refused() {
    for raw in [
        "31/02/1990",
        "12/13/1990",
        "hier",
        "1/2/3/4",
        "25/03/2090",
        "1850",
        "45/1990",
    ] {
        assert!(parse_date(raw, DateKind::Birth, 2026).is_err(), "{raw}");
    }
}

#[test]
fn placeholder_birth_dates() {
    use crate::template::BirthDateQuality as Q;
    let classify = |s: &str| BirthDate::classify(parse_date(s, DateKind::Birth, 2026).unwrap());
    assert_eq!(classify("01/01/1990").quality(), Q::Placeholder);
    assert_eq!(classify("01/01/1990").year(), Some(1990));
    assert_eq!(classify("31/12/1990").quality(), Q::Placeholder);
    assert_eq!(classify("01/01/1900").year(), None);
    assert_eq!(classify("01/01/1900").quality(), Q::Placeholder);
    assert_eq!(classify("1990").quality(), Q::Approximate);
    assert_eq!(classify("02/01/1990").quality(), Q::Exact);
    assert_eq!(classify("").quality(), Q::Missing);
    assert_eq!(classify("01/01/1990").exact(), None);
}

#[test]
fn value_folding() {
    assert_eq!(fold_value("  À la   RUE "), "a la rue");
    assert_eq!(fold_value("Hébergé chez un tiers"), "heberge chez un tiers");
    assert_eq!(fold_value("CHRS"), "chrs");
}

proptest! {
    #[test]
    fn tokens_are_idempotent(s in "\\PC{0,40}") {
        let once = name_tokens(&s);
        let twice = name_tokens(&once.join(" "));
        prop_assert_eq!(&once, &twice);
        for t in &once {
            prop_assert!(t.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn case_and_accents_do_not_matter(s in "[a-zA-Zéèêàçôöüï' -]{1,30}") {
        prop_assert_eq!(name_tokens(&s.to_uppercase()), name_tokens(&s.to_lowercase()));
    }

    #[test]
    fn phonetic_is_stable(s in "[A-Z]{1,20}") {
        let p = phonetic(&s);
        prop_assert!(!p.is_empty());
        prop_assert!(p.bytes().all(|b| b.is_ascii_uppercase()));
    }

    #[test]
    fn french_dates_round_trip(y in 1900i32..2025, m in 1u32..=12, d in 1u32..=28) {
        let want = DateValue::Full(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        prop_assert_eq!(parse_date(&format!("{d:02}/{m:02}/{y}"), DateKind::Birth, 2026), Ok(want));
        prop_assert_eq!(parse_date(&format!("{y}-{m:02}-{d:02}"), DateKind::Birth, 2026), Ok(want));
    }

    #[test]
    fn parse_date_never_panics(s in "\\PC{0,20}") {
        let _ = parse_date(&s, DateKind::Birth, 2026);
        let _ = parse_date(&s, DateKind::Event, 2026);
    }
}
