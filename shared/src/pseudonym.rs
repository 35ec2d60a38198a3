//! Keyed pseudonyms: match keys under the linkage secret, references under an operator secret.
//!
//! Every match key is HMAC-SHA-256 under a per-family sub-key derived from the linkage secret
//! (domain separation), truncated to 96 bits, base64url. Each family combines name parts
//! with date parts and/or sex: no key is made of one attribute alone, and no key is derived
//! from a placeholder name or date (`docs/pseudonymisation.md` explains each family).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Datelike;
use hmac::Mac as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use std::ops::Range;

use crate::normalise::{
    is_particle, phonetic_into, BirthDate, NormalisedNames, MAX_SURNAME_VARIANTS,
};
use crate::template::push_decimal;

/// Version of the match-key set; travels in every batch header.
pub const KEY_SET_VERSION: u32 = 5;

/// Bytes kept from each HMAC output: 96 bits. With 10^7 values in one family the chance of any
/// accidental collision is about 10^-14, and a shorter value keeps batches small.
const KEY_BYTES: usize = 12;

/// An HMAC-SHA-256 key with its inner and outer states computed once.
///
/// RustCrypto's `hmac` over `sha2` (SHA extensions when the processor has them) instead of
/// ring's: ring copies its digest contexts several times per tag, which made it about twice
/// as slow on the agent's short inputs (measured: 189 vs 101 ns per tag). Same HMAC, same
/// bytes: the frozen vectors under `tests/vectors/` check it. Public so that the agent's
/// benchmark measures its bare HMAC cost with the very implementation the run uses.
#[derive(Clone)]
pub struct HmacKey(hmac::Hmac<sha2::Sha256>);

impl HmacKey {
    /// A key from its bytes (any length, as HMAC allows).
    pub fn new(key: &[u8]) -> Self {
        // Unwrap safety: HMAC accepts keys of any length.
        HmacKey(hmac::Hmac::new_from_slice(key).expect("HMAC takes any key length"))
    }

    /// The 32-byte tag of `input`.
    pub fn tag(&self, input: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// A sub-key: the tag of `label`, used as a new key (domain separation).
    fn sub_key(&self, label: &str) -> HmacKey {
        let bytes = Zeroizing::new(self.tag(label.as_bytes()));
        HmacKey::new(bytes.as_ref())
    }
}

/// Why a secret could not be read. Deliberately carries no byte of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// The text is not a Synchro secret of the expected kind.
    #[error("not a Synchro {expected} (the file should contain one line starting with {prefix})")]
    WrongKind {
        /// What was expected.
        expected: &'static str,
        /// The prefix such a line starts with.
        prefix: &'static str,
    },
    /// The secret is shorter or longer than 256 bits, or not base64url.
    #[error("the {0} is damaged (it must encode exactly 256 random bits)")]
    Damaged(&'static str),
    /// The epoch number is not a positive integer.
    #[error("the linkage secret's epoch is not a positive number")]
    BadEpoch,
}

/// 256 random bits that zeroise on drop; no `Clone`, no `Serialize`, redacted `Debug`.
struct SecretBytes(Zeroizing<[u8; 32]>);

impl SecretBytes {
    fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        // Unwrap safety: the OS random source failing is not recoverable and must not
        // silently produce a weak secret.
        SystemRandom::new()
            .fill(bytes.as_mut())
            .expect("operating system random generator failed");
        SecretBytes(bytes)
    }

    fn decode(b64: &str, what: &'static str) -> Result<Self, SecretFormatError> {
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(b64.trim())
                .map_err(|_| SecretFormatError::Damaged(what))?,
        );
        let array: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SecretFormatError::Damaged(what))?;
        Ok(SecretBytes(Zeroizing::new(array)))
    }

    fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_ref()))
    }

    /// A public fingerprint: an HMAC of a fixed label, so it reveals nothing of the key.
    fn fingerprint(&self, label: &str) -> String {
        let tag = HmacKey::new(self.0.as_ref()).tag(label.as_bytes());
        group_fingerprint(&tag[..10])
    }
}

/// Formats fingerprint bytes as readable groups ("3f2a-91c0-…") for people to compare aloud.
pub fn group_fingerprint(bytes: &[u8]) -> String {
    hex::encode(bytes)
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

const LINKAGE_PREFIX: &str = "SYNCHRO-LINKAGE-SECRET-V1";
const REFERENCE_PREFIX: &str = "SYNCHRO-REFERENCE-SECRET-V1";

/// The territory's linkage secret, shared by operators and the custodian, never by the hub.
pub struct LinkageSecret {
    epoch: u32,
    bytes: SecretBytes,
}

impl fmt::Debug for LinkageSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinkageSecret {{ epoch: {}, fingerprint: {} }}",
            self.epoch,
            self.fingerprint()
        )
    }
}

impl LinkageSecret {
    /// Draws a new 256-bit secret from the operating system for the given epoch.
    pub fn generate(epoch: u32) -> Self {
        LinkageSecret {
            epoch,
            bytes: SecretBytes::generate(),
        }
    }

    /// Builds a secret from known bytes (test vectors and unwrapping only).
    pub fn from_bytes(epoch: u32, bytes: [u8; 32]) -> Self {
        LinkageSecret {
            epoch,
            bytes: SecretBytes(Zeroizing::new(bytes)),
        }
    }

    /// The epoch number: incremented at each rotation, checked by the hub.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The public fingerprint printed for DPOs and carried in batch headers.
    pub fn fingerprint(&self) -> String {
        self.bytes
            .fingerprint("synchro/linkage-secret/fingerprint/v1")
    }

    /// The one-line text form written to the secret file.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{LINKAGE_PREFIX}:{}:{}",
            self.epoch,
            self.bytes.encode().as_str()
        ))
    }

    /// Reads the text form (comment lines starting with `#` are ignored).
    pub fn decode(text: &str) -> Result<Self, SecretFormatError> {
        let line = secret_line(text, LINKAGE_PREFIX, "linkage secret")?;
        let mut parts = line.splitn(3, ':');
        let (_, epoch, b64) = (parts.next(), parts.next(), parts.next());
        let epoch: u32 = epoch
            .and_then(|e| e.parse().ok())
            .filter(|e| *e > 0)
            .ok_or(SecretFormatError::BadEpoch)?;
        let bytes = SecretBytes::decode(
            b64.ok_or(SecretFormatError::Damaged("linkage secret"))?,
            "linkage secret",
        )?;
        Ok(LinkageSecret { epoch, bytes })
    }
}

fn secret_line<'a>(
    text: &'a str,
    prefix: &'static str,
    expected: &'static str,
) -> Result<&'a str, SecretFormatError> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.starts_with(prefix))
        .ok_or(SecretFormatError::WrongKind { expected, prefix })
}

/// An operator's own secret for record references: only that operator can map them back.
pub struct ReferenceSecret(SecretBytes);

impl fmt::Debug for ReferenceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReferenceSecret(redacted)")
    }
}

impl ReferenceSecret {
    /// Draws a new 256-bit reference secret.
    pub fn generate() -> Self {
        ReferenceSecret(SecretBytes::generate())
    }

    /// Builds a secret from known bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ReferenceSecret(SecretBytes(Zeroizing::new(bytes)))
    }

    /// The public fingerprint.
    pub fn fingerprint(&self) -> String {
        self.0
            .fingerprint("synchro/reference-secret/fingerprint/v1")
    }

    /// The one-line text form written to the secret file.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{REFERENCE_PREFIX}:{}", self.0.encode().as_str()))
    }

    /// Reads the text form.
    pub fn decode(text: &str) -> Result<Self, SecretFormatError> {
        let line = secret_line(text, REFERENCE_PREFIX, "reference secret")?;
        let b64 = line
            .split_once(':')
            .map(|(_, b)| b)
            .ok_or(SecretFormatError::Damaged("reference secret"))?;
        Ok(ReferenceSecret(SecretBytes::decode(
            b64,
            "reference secret",
        )?))
    }
}

/// A family of match keys: which identity parts it combines (key set v5).
///
/// Every family combines at least one name with at least one date part, except that a record
/// with no birth year at all spreads its name pair over every decade (see [`KeyFamily::NameFirstDecade`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyFamily {
    /// Surname variant + first name + exact birth date; name order-insensitive.
    #[serde(rename = "ndf")]
    NameFirstDate,
    /// Phonetic surname + phonetic first name + exact birth date (spelling, transliteration).
    #[serde(rename = "pdf")]
    PhoneticDate,
    /// One phonetic token of the birth or usage name + exact birth date: survives a missing or
    /// changed first name and a misspelt first name. Same HMAC domain as
    /// [`KeyFamily::FirstTokenDate`], so swapped name fields still agree (across the two tags).
    #[serde(rename = "tsd")]
    SurnameTokenDate,
    /// One phonetic token of the first name + exact birth date: survives a changed usage name
    /// and a misspelt surname.
    #[serde(rename = "tfd")]
    FirstTokenDate,
    /// Surname + first name + birth date with day and month unordered (day/month inversion).
    #[serde(rename = "ndx")]
    NameFirstDateSwapped,
    /// One phonetic surname token + the first name's initial + birth year (typo in the first name
    /// with an approximate or placeholder date). Same HMAC domain as [`KeyFamily::FirstTokenYear`].
    #[serde(rename = "tsy")]
    SurnameTokenYear,
    /// One phonetic first-name token + the surname's initial + birth year.
    #[serde(rename = "tfy")]
    FirstTokenYear,
    /// Phonetic surname + phonetic first name + birth year (weak: approximate or placeholder dates).
    #[serde(rename = "nfy")]
    PhoneticYear,
    /// Surname + first name + day and month of birth (typo in the year).
    #[serde(rename = "nfm")]
    NameFirstDayMonth,
    /// Phonetic surname + phonetic first name + birth decade; a record without any birth year
    /// carries one per decade of [`DECADES`] (weak: links records whose date is missing).
    #[serde(rename = "nfd")]
    NameFirstDecade,
    /// One phonetic surname token + birth year, with no first-name part (weak: a missing first
    /// name together with an approximate or placeholder date; the hub counts it only then).
    #[serde(rename = "sny")]
    SurnameYear,
    /// Exact birth date + the first two or the last two letters of the surname (one typo in
    /// the surname together with a missing first name; the hub counts it only then).
    #[serde(rename = "dsf")]
    DateSurnameEnds,
    /// Phonetic surname + phonetic first name + birth year and month (a typo in the day).
    #[serde(rename = "nym")]
    NameFirstYearMonth,
    /// Phonetic surname + phonetic first name + birth year and day (a typo in the month).
    #[serde(rename = "nyd")]
    NameFirstYearDay,
}

/// The birth decades a record without a birth year is spread over (1920s to 2020s).
pub const DECADES: std::ops::RangeInclusive<u32> = 192..=202;

/// At most this many name tokens give token + date keys.
pub const MAX_DATE_TOKENS: usize = 6;

impl KeyFamily {
    /// Every family of key set v5, in declaration order (`ALL[f.index()] == f`).
    pub const ALL: [KeyFamily; 14] = [
        KeyFamily::NameFirstDate,
        KeyFamily::PhoneticDate,
        KeyFamily::SurnameTokenDate,
        KeyFamily::FirstTokenDate,
        KeyFamily::NameFirstDateSwapped,
        KeyFamily::SurnameTokenYear,
        KeyFamily::FirstTokenYear,
        KeyFamily::PhoneticYear,
        KeyFamily::NameFirstDayMonth,
        KeyFamily::NameFirstDecade,
        KeyFamily::SurnameYear,
        KeyFamily::DateSurnameEnds,
        KeyFamily::NameFirstYearMonth,
        KeyFamily::NameFirstYearDay,
    ];

    /// The short code used on the wire and in the docs.
    pub fn code(self) -> &'static str {
        match self {
            KeyFamily::NameFirstDate => "ndf",
            KeyFamily::PhoneticDate => "pdf",
            KeyFamily::SurnameTokenDate => "tsd",
            KeyFamily::FirstTokenDate => "tfd",
            KeyFamily::SurnameTokenYear => "tsy",
            KeyFamily::FirstTokenYear => "tfy",
            KeyFamily::NameFirstDateSwapped => "ndx",
            KeyFamily::PhoneticYear => "nfy",
            KeyFamily::NameFirstDayMonth => "nfm",
            KeyFamily::NameFirstDecade => "nfd",
            KeyFamily::SurnameYear => "sny",
            KeyFamily::DateSurnameEnds => "dsf",
            KeyFamily::NameFirstYearMonth => "nym",
            KeyFamily::NameFirstYearDay => "nyd",
        }
    }

    /// The family of a wire code.
    pub fn from_code(code: &str) -> Option<KeyFamily> {
        KeyFamily::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Weak families are evidence only together with other agreement.
    pub fn is_weak(self) -> bool {
        matches!(
            self,
            KeyFamily::PhoneticYear
                | KeyFamily::NameFirstDecade
                | KeyFamily::SurnameTokenYear
                | KeyFamily::FirstTokenYear
                | KeyFamily::SurnameYear
        )
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The HMAC domain: the family's own, except that both token + date families share one so
    /// that a token typed in the other name field still gives the same value.
    pub fn domain(self) -> &'static str {
        match self {
            KeyFamily::SurnameTokenDate | KeyFamily::FirstTokenDate => "tkd",
            KeyFamily::SurnameTokenYear | KeyFamily::FirstTokenYear => "tiy",
            other => other.code(),
        }
    }
}

/// Characters of one encoded key value (base64url of [`KEY_BYTES`]).
const KEY_CHARS: usize = 16;

/// One match key value with its family, held inline (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue {
    /// The family.
    pub family: KeyFamily,
    value: [u8; KEY_CHARS],
}

impl KeyValue {
    /// The base64url value.
    pub fn as_str(&self) -> &str {
        // Unwrap safety: base64url output is ASCII.
        std::str::from_utf8(&self.value).expect("base64 is ASCII")
    }

    /// The base64url value as bytes (what the wire writer copies, without re-validating).
    pub fn as_bytes(&self) -> &[u8; KEY_CHARS] {
        &self.value
    }
}

/// A record's match keys, grouped by family; each family may hold several variants.
pub type MatchKeys = BTreeMap<KeyFamily, Vec<String>>;

/// Derives match keys from normalised identities under the linkage secret.
pub struct MatchKeyDeriver {
    family_keys: Vec<HmacKey>,
}

impl fmt::Debug for MatchKeyDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MatchKeyDeriver(redacted)")
    }
}

/// Separates the fields of one HMAC input; names are A–Z and dates digits, so never ambiguous.
const SEP: u8 = 0x1f;

/// A reusable HMAC input buffer, so deriving keys allocates nothing per field.
struct Input(Vec<u8>);

impl Input {
    fn new() -> Self {
        Input(Vec::with_capacity(96))
    }
    fn start(&mut self) -> &mut Self {
        self.0.clear();
        self
    }
    fn field(&mut self, s: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push(SEP);
        }
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// Two names in a fixed order, so "ALI MOHAMED" and "MOHAMED ALI" give one input.
    fn unordered(&mut self, a: &str, b: &str) -> &mut Self {
        if a <= b {
            self.field(a).field(b)
        } else {
            self.field(b).field(a)
        }
    }
    /// A zero-padded decimal number, written without allocating.
    fn number(&mut self, n: u32, width: usize) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push(SEP);
        }
        push_decimal(&mut self.0, n, width);
        self
    }
}

/// A date as the 8 ASCII digits YYYYMMDD.
fn ymd(d: chrono::NaiveDate) -> [u8; 8] {
    let mut out = [b'0'; 8];
    let mut put = |mut v: u32, range: std::ops::Range<usize>| {
        for i in range.rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(d.year() as u32, 0..4);
    put(d.month(), 4..6);
    put(d.day(), 6..8);
    out
}

impl MatchKeyDeriver {
    /// Derives one HMAC sub-key per family (domain separation) from the linkage secret.
    pub fn new(secret: &LinkageSecret) -> Self {
        let master = HmacKey::new(secret.bytes.0.as_ref());
        let family_keys = KeyFamily::ALL
            .iter()
            .map(|family| {
                master.sub_key(&format!(
                    "synchro/match-key/v{KEY_SET_VERSION}/{}",
                    family.domain()
                ))
            })
            .collect();
        MatchKeyDeriver { family_keys }
    }

    fn mac(&self, family: KeyFamily, input: &Input) -> KeyValue {
        let tag = self.family_keys[family.index()].tag(&input.0);
        let mut value = [0u8; KEY_CHARS];
        // Unwrap safety: 12 bytes always encode to exactly 16 base64 characters.
        URL_SAFE_NO_PAD
            .encode_slice(&tag[..KEY_BYTES], &mut value)
            .expect("12 bytes encode to 16 characters");
        KeyValue { family, value }
    }

    /// Computes the match keys of one identity. Placeholder names and dates contribute none.
    pub fn derive(&self, names: &NormalisedNames, birth: &BirthDate) -> MatchKeys {
        let mut flat = Vec::new();
        self.derive_into(names, birth, &mut flat);
        let mut keys = MatchKeys::new();
        for kv in flat {
            keys.entry(kv.family)
                .or_default()
                .push(kv.as_str().to_string());
        }
        keys
    }

    /// [`MatchKeyDeriver::derive`] without allocating per key: appends to `out` (cleared first),
    /// sorted by family and, within a family, in derivation order (the wire order).
    pub fn derive_into(&self, names: &NormalisedNames, birth: &BirthDate, out: &mut Vec<KeyValue>) {
        out.clear();
        let keys = out;
        let mut input = Input::new();
        let first = names.first_token().filter(|f| f.len() >= 2);
        let exact = birth.exact();
        let add = |family: KeyFamily, input: &Input, keys: &mut Vec<KeyValue>| {
            let value = self.mac(family, input);
            if !keys.contains(&value) {
                keys.push(value);
            }
        };
        // Phonetic skeletons, computed once into one buffer for the families using them.
        let sk = Skeletons::new(names);
        let first_ph = sk.first.as_ref().map(|r| sk.get(r));
        let main_ph = sk.birth.as_ref().or(sk.usage.as_ref()).map(|r| sk.get(r));
        let surname_tokens = sk.surname_tokens();
        let first_tokens = sk.first_tokens();
        if let Some(date) = exact {
            let ymd_bytes = ymd(date);
            // Unwrap safety: ASCII digits only.
            let ymd = std::str::from_utf8(&ymd_bytes).expect("ASCII digits");
            if let Some(first) = first {
                for surname in &sk.variants {
                    input.start().unordered(sk.get(surname), first).field(ymd);
                    add(KeyFamily::NameFirstDate, &input, keys);
                }
            }
            if let Some(first_ph) = first_ph {
                for surname in [&sk.birth, &sk.usage].into_iter().flatten() {
                    input
                        .start()
                        .unordered(sk.get(surname), first_ph)
                        .field(ymd);
                    add(KeyFamily::PhoneticDate, &input, keys);
                }
            }
            for (family, tokens) in [
                (KeyFamily::SurnameTokenDate, surname_tokens),
                (KeyFamily::FirstTokenDate, first_tokens),
            ] {
                for token in tokens {
                    input.start().field(sk.get(token)).field(ymd);
                    add(family, &input, keys);
                }
            }
            // Either end of each surname as written: one typo leaves the other end intact.
            for tokens in [&names.birth, &names.usage] {
                if let Some(ends) = surname_ends(tokens) {
                    for end in &ends {
                        // Unwrap safety: names are normalised to ASCII letters.
                        let end = std::str::from_utf8(end).expect("ASCII letters");
                        input.start().field(end).field(ymd);
                        add(KeyFamily::DateSurnameEnds, &input, keys);
                    }
                }
            }
            if let (Some(surname_ph), Some(first_ph)) = (main_ph, first_ph) {
                // Phonetic names: a date error together with a spelling variant still agrees.
                let (d, m) = (date.day(), date.month());
                if d <= 12 && d != m {
                    input
                        .start()
                        .unordered(surname_ph, first_ph)
                        .number(date.year() as u32, 4)
                        .number(d.min(m), 2)
                        .number(d.max(m), 2);
                    add(KeyFamily::NameFirstDateSwapped, &input, keys);
                }
                // Names with two of the three date parts: a typo in the year (`nfm`), or one
                // digit typed wrong in the day or the month (`nym`, `nyd`). Two unrelated dates
                // under one name (namesakes) share none of them.
                let (year, month, day) =
                    ((date.year() as u32, 4), (date.month(), 2), (date.day(), 2));
                for (family, (a, a_width), (b, b_width)) in [
                    (KeyFamily::NameFirstDayMonth, month, day),
                    (KeyFamily::NameFirstYearMonth, year, month),
                    (KeyFamily::NameFirstYearDay, year, day),
                ] {
                    input
                        .start()
                        .unordered(surname_ph, first_ph)
                        .number(a, a_width)
                        .number(b, b_width);
                    add(family, &input, keys);
                }
            }
        }
        if let Some(year) = birth.year() {
            // Surname tokens alone with the year: the only key of a record whose first name is
            // missing and whose date is approximate.
            for token in surname_tokens {
                input.start().field(sk.get(token)).number(year as u32, 4);
                add(KeyFamily::SurnameYear, &input, keys);
            }
        }
        if let (Some(surname_ph), Some(first_ph)) = (main_ph, first_ph) {
            match birth.year() {
                Some(year) => {
                    input
                        .start()
                        .unordered(surname_ph, first_ph)
                        .number(year as u32, 4);
                    add(KeyFamily::PhoneticYear, &input, keys);
                    // Each token with the other name's initial: a key that holds one name and
                    // one letter of the other, so common surnames alone never form a value.
                    let (surname_initial, first_initial) = (&surname_ph[..1], &first_ph[..1]);
                    for (family, tokens, initial) in [
                        (KeyFamily::SurnameTokenYear, surname_tokens, first_initial),
                        (KeyFamily::FirstTokenYear, first_tokens, surname_initial),
                    ] {
                        for token in tokens {
                            input
                                .start()
                                .field(sk.get(token))
                                .field(initial)
                                .number(year as u32, 4);
                            add(family, &input, keys);
                        }
                    }
                    input
                        .start()
                        .unordered(surname_ph, first_ph)
                        .number(year as u32 / 10, 3);
                    add(KeyFamily::NameFirstDecade, &input, keys);
                }
                None => {
                    // No year at all: one key per plausible decade, so the record still meets
                    // its dated registrations while the hub cannot tell it from theirs.
                    for decade in DECADES {
                        input
                            .start()
                            .unordered(surname_ph, first_ph)
                            .number(decade, 3);
                        add(KeyFamily::NameFirstDecade, &input, keys);
                    }
                }
            }
        }
        keys.sort_by_key(|kv| kv.family);
    }
}

/// The first two and the last two letters of a surname written as one word, each tagged
/// (`^AB`, `YZ$`) so a prefix never equals a suffix; `None` under three letters.
fn surname_ends(tokens: &[String]) -> Option<[[u8; 3]; 2]> {
    let letters = || tokens.iter().flat_map(|t| t.bytes());
    letters().nth(2)?;
    let mut head = letters();
    let mut tail = tokens.iter().rev().flat_map(|t| t.bytes().rev());
    let (h0, h1) = (head.next()?, head.next()?);
    let (t1, t0) = (tail.next()?, tail.next()?);
    Some([[b'^', h0, h1], [t0, t1, b'$']])
}

/// The phonetic forms one identity's keys need, in one buffer (a handful of allocations per
/// record instead of one per form).
struct Skeletons {
    buf: String,
    /// The first given name's first token.
    first: Option<Range<usize>>,
    /// The whole birth name, joined.
    birth: Option<Range<usize>>,
    /// The whole usage name, joined.
    usage: Option<Range<usize>>,
    /// Distinct token skeletons of the surnames then of the first name ([`MAX_DATE_TOKENS`] in
    /// all); `split` is where the first name's begin.
    tokens: Vec<Range<usize>>,
    split: usize,
    /// Surname variants as written (not phonetic), for the exact-name family.
    variants: Vec<Range<usize>>,
}

impl Skeletons {
    fn new(names: &NormalisedNames) -> Self {
        let mut sk = Skeletons {
            buf: String::with_capacity(96),
            first: None,
            birth: None,
            usage: None,
            tokens: Vec::with_capacity(MAX_DATE_TOKENS),
            split: 0,
            variants: Vec::with_capacity(MAX_SURNAME_VARIANTS),
        };
        names.surname_variants_into(&mut sk.buf, &mut sk.variants);
        let mut joined = String::with_capacity(32);
        sk.first = names
            .first_token()
            .filter(|f| f.len() >= 2)
            .map(|f| sk.push(f, false));
        for (tokens, slot) in [(&names.birth, 0), (&names.usage, 1)] {
            if tokens.is_empty() {
                continue;
            }
            joined.clear();
            tokens.iter().for_each(|t| joined.push_str(t));
            let range = sk.push(&joined, false);
            if slot == 0 {
                sk.birth = Some(range);
            } else {
                sk.usage = Some(range);
            }
        }
        let (birth, usage) = (sk.birth.clone(), sk.usage.clone());
        for (tokens, whole, is_first) in [
            (&names.birth, birth, false),
            (&names.usage, usage, false),
            (&names.first, None, true),
        ] {
            if is_first {
                sk.split = sk.tokens.len();
            }
            let group = if is_first { sk.split } else { 0 };
            let whole_range = whole.clone();
            if tokens.len() > 1 {
                match whole {
                    // The whole name's skeleton is already in the buffer: reuse it.
                    Some(range) if range.len() >= 2 => sk.add_token(range, group),
                    _ => {
                        joined.clear();
                        tokens.iter().for_each(|t| joined.push_str(t));
                        sk.push_token(&joined, group);
                    }
                }
            }
            // A one-word name's token is the word whose skeleton is already in the buffer (the
            // whole surname, or the first name's first token): phonetics is most of the
            // per-record cost outside the HMACs, so it is not computed twice.
            let known = match (is_first, tokens.len()) {
                (false, 1) => whole_range.clone(),
                (true, _) => sk.first.clone(),
                _ => None,
            }
            .filter(|r| r.len() >= 2);
            // A particle is dropped from a name that has another token ("LE GOFF"), not from a
            // surname that is nothing else: "LE" is also a common Vietnamese surname (Lê). The
            // other tokens are looked at only when a particle is met (rare on this hot path).
            let drops_particle =
                |t: &str| is_particle(t) && (is_first || tokens.iter().any(|o| !is_particle(o)));
            for (n, t) in tokens.iter().enumerate() {
                if t.len() < 2 || drops_particle(t) {
                    continue;
                }
                match &known {
                    Some(range) if n == 0 => sk.add_token(range.clone(), group),
                    _ => sk.push_token(t, group),
                }
            }
        }
        sk
    }

    /// Appends the skeleton of `word` (or `word` itself when `fallback` and the skeleton is
    /// too short to identify, as "K" for "KAYA").
    fn push(&mut self, word: &str, fallback: bool) -> Range<usize> {
        let start = self.buf.len();
        phonetic_into(word, &mut self.buf);
        if fallback && self.buf.len() - start < 2 {
            self.buf.truncate(start);
            self.buf.push_str(word);
        }
        start..self.buf.len()
    }

    /// Adds a token skeleton unless its group (surnames, or first name from `group`) has it.
    fn push_token(&mut self, word: &str, group: usize) {
        if self.tokens.len() >= MAX_DATE_TOKENS {
            return;
        }
        let range = self.push(word, true);
        let before = self.tokens.len();
        self.add_token(range.clone(), group);
        if self.tokens.len() == before {
            self.buf.truncate(range.start);
        }
    }

    /// Records a skeleton already in the buffer as a token, unless its group has it.
    fn add_token(&mut self, range: Range<usize>, group: usize) {
        let new = &self.buf[range.clone()];
        if self.tokens.len() < MAX_DATE_TOKENS
            && !self.tokens[group..]
                .iter()
                .any(|r| &self.buf[r.clone()] == new)
        {
            self.tokens.push(range);
        }
    }

    fn get(&self, range: &Range<usize>) -> &str {
        &self.buf[range.clone()]
    }

    fn surname_tokens(&self) -> &[Range<usize>] {
        &self.tokens[..self.split]
    }

    fn first_tokens(&self) -> &[Range<usize>] {
        &self.tokens[self.split..]
    }
}

/// Derives an operator's record and household references from its local ids.
pub struct ReferenceDeriver {
    record: HmacKey,
    household: HmacKey,
}

impl fmt::Debug for ReferenceDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReferenceDeriver(redacted)")
    }
}

impl ReferenceDeriver {
    /// Sub-keys for records and households, bound to the operator id.
    pub fn new(secret: &ReferenceSecret, operator_id: &str) -> Self {
        let master = HmacKey::new(secret.0 .0.as_ref());
        let sub =
            |kind: &str| master.sub_key(&format!("synchro/reference/v1/{operator_id}/{kind}"));
        ReferenceDeriver {
            record: sub("record"),
            household: sub("household"),
        }
    }

    /// The reference sent for a local record id ("r_" + 96 bits).
    pub fn record_ref(&self, local_id: &str) -> String {
        let tag = self.record.tag(local_id.trim().as_bytes());
        let mut out = String::with_capacity(2 + 22);
        out.push_str("r_");
        URL_SAFE_NO_PAD.encode_string(&tag[..KEY_BYTES], &mut out);
        out
    }

    /// The reference sent for a local household id ("h_" + 96 bits).
    pub fn household_ref(&self, household_id: &str) -> String {
        let tag = self.household.tag(household_id.trim().as_bytes());
        let mut out = String::with_capacity(2 + 22);
        out.push_str("h_");
        URL_SAFE_NO_PAD.encode_string(&tag[..KEY_BYTES], &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::{parse_date, DateKind};

    fn deriver() -> MatchKeyDeriver {
        MatchKeyDeriver::new(&LinkageSecret::from_bytes(1, [7u8; 32]))
    }

    fn keys(birth: &str, usage: &str, first: &str, date: &str) -> MatchKeys {
        let names = NormalisedNames::from_raw(birth, usage, first);
        let date = BirthDate::classify(parse_date(date, DateKind::Birth, 2026).unwrap());
        deriver().derive(&names, &date)
    }

    /// A surname token of one agrees with a first-name token of the other, either way.
    fn crosses(a: &MatchKeys, b: &MatchKeys) -> bool {
        let tokens = |k: &MatchKeys, f: KeyFamily| k.get(&f).cloned().unwrap_or_default();
        let one_way = |x: &MatchKeys, y: &MatchKeys| {
            let first = tokens(y, KeyFamily::FirstTokenDate);
            tokens(x, KeyFamily::SurnameTokenDate)
                .iter()
                .any(|v| first.contains(v))
        };
        one_way(a, b) || one_way(b, a)
    }

    fn shares(a: &MatchKeys, b: &MatchKeys, family: KeyFamily) -> bool {
        match (a.get(&family), b.get(&family)) {
            (Some(x), Some(y)) => x.iter().any(|v| y.contains(v)),
            _ => false,
        }
    }

    #[test]
    fn hmac_key_is_standard_hmac_sha256() {
        // RFC 4231, test cases 2 and 6 (a key longer than a block is hashed first).
        let tag = HmacKey::new(b"Jefe").tag(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let tag = HmacKey::new(&[0xaa; 131])
            .tag(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(tag),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_surname_that_is_only_a_particle_keeps_its_token() {
        // Lê, a common Vietnamese surname, written LE: a misspelt first name still meets the
        // surname token + date, as for any other surname.
        let a = keys("Le", "", "Christophe", "13/09/1987");
        let b = keys("Lê", "", "Christoph", "13/09/1987");
        assert!(shares(&a, &b, KeyFamily::SurnameTokenDate));
        assert!(a.contains_key(&KeyFamily::SurnameYear));
        // In "Le Goff" the particle is still dropped: GOFF alone is the token.
        let goff = keys("Le Goff", "", "Anne", "01/02/1990");
        let goff_only = keys("Goff", "", "Marie", "01/02/1990");
        assert!(shares(&goff, &goff_only, KeyFamily::SurnameTokenDate));
        assert!(!shares(
            &goff,
            &keys("Le", "", "Marie", "01/02/1990"),
            KeyFamily::SurnameTokenDate
        ));
    }

    #[test]
    fn secret_round_trip_and_redaction() {
        let s = LinkageSecret::generate(3);
        let text = s.encode();
        let back = LinkageSecret::decode(&format!("# comment\n{}\n", text.as_str())).unwrap();
        assert_eq!(back.epoch(), 3);
        assert_eq!(back.fingerprint(), s.fingerprint());
        let debug = format!("{s:?}");
        assert!(!debug.contains(text.split(':').nth(2).unwrap()));
        assert!(matches!(
            LinkageSecret::decode("SYNCHRO-LINKAGE-SECRET-V1:1:abc"),
            Err(SecretFormatError::Damaged(_))
        ));
        assert!(matches!(
            LinkageSecret::decode(&ReferenceSecret::generate().encode()),
            Err(SecretFormatError::WrongKind { .. })
        ));
    }

    #[test]
    fn phenomena_share_a_key() {
        let base = keys("Dupont", "", "Jean-Pierre", "25/03/1987");
        // Typo'd vowel and final consonant: phonetic key.
        let typo = keys("Dupond", "", "Jean-Pierre", "1987-03-25");
        assert!(shares(&base, &typo, KeyFamily::PhoneticDate));
        // Swapped surname and first name.
        let swapped = keys("Jean-Pierre", "", "Dupont", "25/03/1987");
        assert!(shares(&base, &swapped, KeyFamily::NameFirstDate));
        // Missing first name.
        let no_first = keys("DUPONT", "", "", "25/03/1987");
        assert!(shares(&base, &no_first, KeyFamily::SurnameTokenDate));
        // Swapped fields with a misspelt first name: a token agrees across the two tags.
        let swapped_typo = keys("Jean-Pierre", "", "Dupomt", "25/03/1987");
        assert!(crosses(&base, &swapped_typo));
        // Transliteration.
        let a = keys("Ben Ali", "", "Mohamed", "03/04/1990");
        let b = keys("Benali", "", "Muhammad", "03/04/1990");
        assert!(shares(&a, &b, KeyFamily::PhoneticDate));
        // Day/month inversion.
        let c = keys("Benali", "", "Mohamed", "04/03/1990");
        assert!(shares(&a, &c, KeyFamily::NameFirstDateSwapped));
        assert!(!shares(&a, &c, KeyFamily::NameFirstDate));
        // Married name used instead of birth name.
        let maiden = keys("Martin", "", "Sophie", "12/11/1975");
        let married = keys("Martin", "Lefebvre", "Sophie", "12/11/1975");
        let married_only = keys("", "Lefebvre", "Sophie", "12/11/1975");
        assert!(shares(&maiden, &married, KeyFamily::NameFirstDate));
        assert!(shares(&married, &married_only, KeyFamily::NameFirstDate));
        assert!(shares(&maiden, &married_only, KeyFamily::FirstTokenDate));
        // No birth date at all: the name pair still meets the dated record in its decade.
        let undated = keys("Martin", "", "Sophie", "");
        assert!(shares(&maiden, &undated, KeyFamily::NameFirstDecade));
        assert_eq!(undated[&KeyFamily::NameFirstDecade].len(), DECADES.count());
    }

    #[test]
    fn a_missing_first_name_or_a_surname_typo_still_shares_a_key() {
        // Missing first name with a year-only date: the surname and year alone.
        let full = keys("Clément", "", "Aïcha", "01/04/2021");
        let year_only = keys("CLEMENT", "", "", "2021");
        assert!(shares(&full, &year_only, KeyFamily::SurnameYear));
        // Placeholder date (its year is real) with a missing first name.
        let placeholder = keys("Meziane", "", "", "01/01/2016");
        assert!(shares(
            &keys("Meziane", "", "Karim", "2016"),
            &placeholder,
            KeyFamily::SurnameYear
        ));
        // Surname typo at either end and a missing first name, exact date: the other end agrees.
        for (typo, right) in [("Looez", "Lopez"), ("Akya", "Kaya"), ("Clemen", "Clément")] {
            let a = keys(typo, "", "", "03/08/2019");
            let b = keys(right, "", "Christophe", "03/08/2019");
            assert!(shares(&a, &b, KeyFamily::DateSurnameEnds), "{typo}");
            // Another day gives nothing.
            let other_day = keys(right, "", "Christophe", "04/08/2019");
            assert!(
                !shares(&a, &other_day, KeyFamily::DateSurnameEnds),
                "{typo}"
            );
        }
        // A prefix never meets a suffix; a name under three letters has no ends.
        let ab = keys("Abxy", "", "", "03/08/2019");
        let xyab = keys("Xyab", "", "", "03/08/2019");
        assert!(!shares(&ab, &xyab, KeyFamily::DateSurnameEnds));
        assert_eq!(surname_ends(&["AB".into()]), None);
        assert_eq!(
            surname_ends(&["DA".into(), "SILVA".into()]),
            Some([*b"^DA", *b"VA$"])
        );
    }

    #[test]
    fn every_family_has_its_own_sub_key_except_shared_domains() {
        for (i, family) in KeyFamily::ALL.iter().enumerate() {
            assert_eq!(family.index(), i, "{family:?} out of order in ALL");
        }
        // The same token typed as a surname or as a first name gives one value (shared domain).
        let a = keys("Karim", "", "Dupont", "1987");
        let b = keys("Dupont", "", "Kevin", "1987");
        let year_tokens = |k: &MatchKeys| -> Vec<String> {
            [KeyFamily::SurnameTokenYear, KeyFamily::FirstTokenYear]
                .iter()
                .flat_map(|f| k.get(f).cloned().unwrap_or_default())
                .collect()
        };
        let (ta, tb) = (year_tokens(&a), year_tokens(&b));
        assert!(
            ta.iter().any(|v| tb.contains(v)),
            "tsy and tfy share one domain"
        );
    }

    #[test]
    fn distinct_people_do_not_share_strong_keys() {
        let twin_a = keys("Diallo", "", "Awa", "05/06/2001");
        let twin_b = keys("Diallo", "", "Fatou", "05/06/2001");
        assert!(!shares(&twin_a, &twin_b, KeyFamily::NameFirstDate));
        assert!(!shares(&twin_a, &twin_b, KeyFamily::FirstTokenDate));
        assert!(shares(&twin_a, &twin_b, KeyFamily::SurnameTokenDate));
        let father = keys("Martin", "", "Paul", "14/02/1960");
        let son = keys("Martin", "", "Paul", "14/02/1990");
        assert!(!shares(&father, &son, KeyFamily::NameFirstDate));
        assert!(!shares(&father, &son, KeyFamily::PhoneticYear));
    }

    #[test]
    fn placeholders_give_no_date_keys() {
        let k = keys("Rahimi", "", "Ahmad", "01/01/1995");
        assert!(!k.contains_key(&KeyFamily::NameFirstDate));
        assert!(!k.contains_key(&KeyFamily::SurnameTokenDate));
        assert!(k.contains_key(&KeyFamily::PhoneticYear));
        let unknown = keys("INCONNU", "", "X", "25/03/1987");
        assert!(unknown.is_empty());
        let no_name_first = keys("X", "", "Ahmad", "25/03/1987");
        assert_eq!(
            no_name_first.keys().copied().collect::<Vec<_>>(),
            vec![KeyFamily::FirstTokenDate]
        );
    }

    #[test]
    fn keys_depend_on_the_secret_and_family() {
        let names = NormalisedNames::from_raw("Durand", "", "Luc");
        let date = BirthDate::classify(parse_date("02/03/1980", DateKind::Birth, 2026).unwrap());
        let a = deriver().derive(&names, &date);
        let other = MatchKeyDeriver::new(&LinkageSecret::from_bytes(1, [8u8; 32]));
        let b = other.derive(&names, &date);
        assert!(!shares(&a, &b, KeyFamily::NameFirstDate));
        let all: Vec<&String> = a.values().flatten().collect();
        let unique: std::collections::HashSet<&&String> = all.iter().collect();
        assert_eq!(all.len(), unique.len(), "families are domain-separated");
    }

    #[test]
    fn flat_keys_serialise_like_grouped_keys() {
        use crate::template::*;
        for (birth, usage, first, date) in [
            ("Dupont", "Martin", "Jean-Pierre", "05/03/1987"),
            ("de la Fontaine", "", "Marie", "12/11/1975"),
            ("Rahimi", "", "Ahmad", "01/01/1995"),
            ("X", "", "", ""),
        ] {
            let names = NormalisedNames::from_raw(birth, usage, first);
            let date = BirthDate::classify(parse_date(date, DateKind::Birth, 2026).unwrap());
            let mut flat = Vec::new();
            deriver().derive_into(&names, &date, &mut flat);
            let mut record = Record {
                record_ref: "r_x".into(),
                household_ref: None,
                keys: MatchKeys::new(),
                name_quality: NameQuality::Full,
                birth_date_quality: BirthDateQuality::Exact,
                sex: Some(Sex::Male),
                birth_year: None,
                age_band: None,
                household_role: None,
                household_size: None,
                living_situation: LivingSituation::Rue,
                first_contact: None,
                last_contact: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
                municipality: None,
                nationality: None,
                admin_status: None,
                resources: None,
                siao_request: None,
                social_housing_request: None,
                exit_date: None,
                exit_destination: None,
                needs: vec![],
            };
            let mut a = Vec::new();
            record.write_json_with_keys(&mut a, &flat);
            record.keys = deriver().derive(&names, &date);
            let mut b = Vec::new();
            record.write_json(&mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }

    #[test]
    fn references_are_per_operator() {
        let secret = ReferenceSecret::from_bytes([1u8; 32]);
        let a = ReferenceDeriver::new(&secret, "siao-69");
        let b = ReferenceDeriver::new(&secret, "ccas-lyon");
        assert_eq!(a.record_ref("123"), a.record_ref(" 123 "));
        assert_ne!(a.record_ref("123"), b.record_ref("123"));
        assert_ne!(a.record_ref("123"), a.household_ref("123"));
    }
}
