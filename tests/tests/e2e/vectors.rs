//! Cross-version test vectors: a fixed secret and fixed identities give fixed match keys and
//! references. A change that alters them breaks linkage between agent versions: it must come
//! with a new key-set version, not silently. Regenerate only then, with
//! `cargo test -p synchro-tests --test e2e -- --ignored write_vectors`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use synchro_shared::normalise::{parse_date, BirthDate, DateKind, NormalisedNames};
use synchro_shared::pseudonym::{
    LinkageSecret, MatchKeyDeriver, ReferenceDeriver, ReferenceSecret, KEY_SET_VERSION,
};
use synchro_shared::template::Sex;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/match_keys_v5.json");

/// (birth name, usage name, first names, birth date, sex)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    ("Dupont", "", "Jean-Pierre", "25/03/1987", "M"),
    ("DUPONT", "", "Jean Pierre", "1987-03-25", "M"),
    ("Dupond", "", "Jean-Pierre", "25/03/1987", "M"),
    ("Jean-Pierre", "", "Dupont", "25/03/1987", "M"),
    ("Ben Ali", "", "Mohamed", "03/04/1990", "M"),
    ("Benali", "", "Muhammad", "04/03/1990", "M"),
    ("de la Fontaine", "", "Marie, Anne", "12/11/1975", "F"),
    ("Martin", "Lefèvre", "Sophie", "12/11/1975", "F"),
    ("Martin épouse Lefèvre", "", "Sophie", "12/11/1975", "F"),
    ("", "Lefèvre née Martin", "Sophie", "12/11/1975", "F"),
    ("Rahimi", "", "Ahmad", "01/01/1995", "M"),
    ("Rahimi", "", "Ahmad", "1995", "M"),
    ("Diallo", "", "Awa", "05/06/2001", "F"),
    ("Diallo", "", "Fatou", "05/06/2001", "F"),
    ("INCONNU", "", "X", "25/03/1987", ""),
    ("X", "", "Karim", "14/07/1982", "M"),
    ("Nguyễn", "", "Thị Lan", "31861", "F"),
    ("Œuvray", "", "Lætitia", "19870325", "F"),
    ("D'Almeida", "", "José", "00/00/1979", "M"),
    ("Kowalski", "", "", "02/02/1966", "M"),
    ("Popescu", "", "Ion", "", "M"),
    ("Traoré", "", "Moussa", "30/09/2004", ""),
];

const OPERATOR: &str = "siao-69";
const LOCAL_IDS: &[&str] = &["1", "S0000042", "dossier 2026/117", "  7  "];

fn compute() -> Value {
    let secret = LinkageSecret::from_bytes(1, [0x42; 32]);
    let deriver = MatchKeyDeriver::new(&secret);
    let refs = ReferenceDeriver::new(&ReferenceSecret::from_bytes([0x24; 32]), OPERATOR);
    let cases: Vec<Value> = CASES
        .iter()
        .map(|(birth, usage, first, date, sex)| {
            let names = NormalisedNames::from_raw(birth, usage, first);
            let birth_date = BirthDate::classify(parse_date(date, DateKind::Birth, 2026).unwrap());
            let sex = Sex::from_code(sex);
            let keys = deriver.derive(&names, &birth_date);
            let keys: BTreeMap<&str, &Vec<String>> = keys.iter().map(|(f, v)| (f.code(), v)).collect();
            json!({"birth_name": birth, "usage_name": usage, "first_names": first, "birth_date": date, "sex": sex.map(|s| s.code()), "keys": keys})
        })
        .collect();
    let references: Vec<Value> = LOCAL_IDS
        .iter()
        .map(|id| json!({"local_id": id, "record_ref": refs.record_ref(id), "household_ref": refs.household_ref(id)}))
        .collect();
    json!({
        "key_set_version": KEY_SET_VERSION,
        "linkage_secret": "0x42 repeated 32 times, epoch 1",
        "reference_secret": "0x24 repeated 32 times",
        "operator_id": OPERATOR,
        "linkage_secret_fingerprint": secret.fingerprint(),
        "cases": cases,
        "references": references,
    })
}

#[test]
fn match_keys_and_references_match_the_frozen_vectors() {
    let frozen: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file")).unwrap();
    let now = compute();
    assert_eq!(frozen["key_set_version"], now["key_set_version"]);
    let (a, b) = (
        frozen["cases"].as_array().unwrap(),
        now["cases"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (f, n) in a.iter().zip(b) {
        assert_eq!(f, n, "match keys changed for {}", f["birth_name"]);
    }
    assert_eq!(frozen["references"], now["references"]);
    assert_eq!(
        frozen["linkage_secret_fingerprint"],
        now["linkage_secret_fingerprint"]
    );
}

#[test]
#[ignore = "regenerates the frozen vectors; run only with a key-set version change"]
fn write_vectors() {
    std::fs::write(
        PATH,
        serde_json::to_string_pretty(&compute()).unwrap() + "\n",
    )
    .unwrap();
}
