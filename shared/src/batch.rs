//! The versioned wire format of a monthly batch, its detached signature and its encryption.
//!
//! A batch is a standard age file (age-encryption.org/v1) encrypted to the hub's X25519
//! recipient. Its plaintext is JSON lines: one header line, one line per [`Record`], one
//! trailer line with the row count (the agent streams, so the count comes last, and a
//! truncated payload is detected). Beside the ciphertext travels a [`BatchSignature`]: the
//! operator's Ed25519 signature over the ciphertext hash, operator, period, key epoch, time
//! and a random nonce, so that a captured upload can be neither replayed nor re-attributed.

use std::fmt;
use std::io::{BufRead, Write};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::template::{BirthDateMinimisation, Record};

/// Version of the batch payload format.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` value of every header, so a stray JSON file is not mistaken for a batch.
pub const FORMAT_NAME: &str = "synchro-batch";
/// The `format` value of every signature file.
pub const SIGNATURE_FORMAT_NAME: &str = "synchro-batch-signature";

/// Errors reading or writing a batch. Crypto failures carry no detail on purpose: which
/// step failed is all a sender needs, and details could help an attacker probe the hub.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Writing or reading the underlying stream failed.
    #[error("input/output error: {0}")]
    Io(#[from] std::io::Error),
    /// A payload line is not what the format expects.
    #[error("payload line {line}: {message}")]
    Malformed {
        /// 1-based line in the decrypted payload.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// The payload ended without its trailer (truncated or cut).
    #[error("the payload ends without its trailer line: the batch is truncated")]
    Truncated,
    /// The trailer's count differs from the records read.
    #[error("the trailer announces {announced} records but the payload holds {actual}")]
    CountMismatch {
        /// Count in the trailer.
        announced: u64,
        /// Records actually read.
        actual: u64,
    },
    /// The ciphertext could not be decrypted with the given identity.
    #[error("the batch cannot be decrypted with this hub identity (wrong recipient or damaged ciphertext)")]
    Decrypt,
    /// Encryption could not start.
    #[error("the batch cannot be encrypted to the hub recipient")]
    Encrypt,
    /// The signature does not verify.
    #[error("the batch signature does not verify against the operator's signing key")]
    BadSignature,
    /// The signature file is not readable.
    #[error("the signature file is malformed: {0}")]
    SignatureFormat(String),
}

/// A month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    month: u32,
}

/// Why a period string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a period: expected YYYY-MM with a month from 01 to 12 and a year from 2000 to 2099, e.g. 2026-10")]
pub struct PeriodError(pub String);

impl Period {
    /// Builds a period from its parts.
    pub fn new(year: i32, month: u32) -> Result<Self, PeriodError> {
        if (2000..=2099).contains(&year) && (1..=12).contains(&month) {
            Ok(Period { year, month })
        } else {
            Err(PeriodError(format!("{year:04}-{month:02}")))
        }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// The last day of the month (reference date for ages).
    pub fn last_day(self) -> chrono::NaiveDate {
        let (y, m) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        // Unwrap safety: year and month are validated at construction.
        chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.pred_opt())
            .expect("validated period")
    }

    /// The first day of the month.
    pub fn first_day(self) -> chrono::NaiveDate {
        // Unwrap safety: year and month are validated at construction.
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated period")
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year: i32 = y.parse().map_err(|_| err())?;
        let month: u32 = m.parse().map_err(|_| err())?;
        Period::new(year, month).map_err(|_| err())
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an operator id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an operator id: use 2 to 63 lower-case letters, digits and hyphens, starting with a letter or digit (e.g. siao-69)")]
pub struct OperatorIdError(pub String);

/// Checks an operator id (it appears in file names, URLs and audit entries).
pub fn validate_operator_id(id: &str) -> Result<(), OperatorIdError> {
    let ok = (2..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(OperatorIdError(id.to_string()))
    }
}

/// The first line of every batch payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Payload format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Record template version.
    pub template_version: u32,
    /// Match-key set version.
    pub key_set_version: u32,
    /// Sending operator.
    pub operator_id: String,
    /// The month the batch describes.
    pub period: Period,
    /// Epoch of the linkage secret the keys were derived with.
    pub key_epoch: u32,
    /// Public fingerprint of that linkage secret.
    pub key_fingerprint: String,
    /// Version of the agent that built the batch.
    pub agent_version: String,
    /// When the batch was built.
    pub created_at: DateTime<Utc>,
    /// What the records carry about birth dates.
    pub minimisation: BirthDateMinimisation,
}

/// The last line of every batch payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchTrailer {
    /// Records in the batch.
    pub row_count: u64,
    /// Rows of the export left out under the operator's rejection tolerance.
    pub rejected_count: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailerLine {
    trailer: BatchTrailer,
}

/// Writes a batch payload as JSON lines.
pub struct PayloadWriter<W: Write> {
    out: W,
    rows: u64,
    line: Vec<u8>,
}

impl<W: Write> PayloadWriter<W> {
    /// Starts a payload by writing its header.
    pub fn new(mut out: W, header: &BatchHeader) -> Result<Self, BatchError> {
        let mut line = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line)?;
        Ok(PayloadWriter {
            out,
            rows: 0,
            line: Vec::with_capacity(1024),
        })
    }

    /// Appends one record.
    pub fn write_record(&mut self, record: &Record) -> Result<(), BatchError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.rows += 1;
        Ok(())
    }

    /// Appends records already serialised as JSON lines (`count` of them), as pipeline
    /// workers produce them.
    pub fn write_serialized(&mut self, lines: &[u8], count: u64) -> Result<(), BatchError> {
        self.out.write_all(lines)?;
        self.rows += count;
        Ok(())
    }

    /// Records written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self, rejected_count: u64) -> Result<W, BatchError> {
        let trailer = TrailerLine {
            trailer: BatchTrailer {
                row_count: self.rows,
                rejected_count,
            },
        };
        let mut line = serde_json::to_vec(&trailer).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a batch payload line by line, checking its structure.
pub struct PayloadReader<R: BufRead> {
    input: R,
    header: BatchHeader,
    line_no: u64,
    rows: u64,
    trailer: Option<BatchTrailer>,
    buf: String,
}

impl<R: BufRead> PayloadReader<R> {
    /// Reads and parses the header line.
    pub fn new(mut input: R) -> Result<Self, BatchError> {
        let mut buf = String::new();
        if input.read_line(&mut buf)? == 0 {
            return Err(BatchError::Truncated);
        }
        let header: BatchHeader =
            serde_json::from_str(buf.trim_end()).map_err(|e| BatchError::Malformed {
                line: 1,
                message: format!("not a batch header: {e}"),
            })?;
        if header.format != FORMAT_NAME {
            return Err(BatchError::Malformed {
                line: 1,
                message: format!("format is {:?}, expected {FORMAT_NAME:?}", header.format),
            });
        }
        Ok(PayloadReader {
            input,
            header,
            line_no: 1,
            rows: 0,
            trailer: None,
            buf,
        })
    }

    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The next record, `None` after a valid trailer.
    pub fn next_record(&mut self) -> Result<Option<Record>, BatchError> {
        if self.trailer.is_some() {
            return Ok(None);
        }
        self.buf.clear();
        if self.input.read_line(&mut self.buf)? == 0 {
            return Err(BatchError::Truncated);
        }
        self.line_no += 1;
        let line = self.buf.trim_end();
        if line.starts_with("{\"trailer\"") {
            let t: TrailerLine = serde_json::from_str(line).map_err(|e| BatchError::Malformed {
                line: self.line_no,
                message: format!("bad trailer: {e}"),
            })?;
            if t.trailer.row_count != self.rows {
                return Err(BatchError::CountMismatch {
                    announced: t.trailer.row_count,
                    actual: self.rows,
                });
            }
            let mut rest = String::new();
            if self.input.read_line(&mut rest)? != 0 {
                return Err(BatchError::Malformed {
                    line: self.line_no + 1,
                    message: "data after the trailer".into(),
                });
            }
            self.trailer = Some(t.trailer);
            return Ok(None);
        }
        let record: Record = serde_json::from_str(line).map_err(|e| BatchError::Malformed {
            line: self.line_no,
            message: format!("not a record: {e}"),
        })?;
        self.rows += 1;
        Ok(Some(record))
    }

    /// The trailer, once every record has been read.
    pub fn trailer(&self) -> Option<&BatchTrailer> {
        self.trailer.as_ref()
    }
}

/// A writer that hashes (SHA-256) and counts everything passing through it.
pub struct Sha256Writer<W: Write> {
    inner: W,
    digest: ring::digest::Context,
    len: u64,
}

impl<W: Write> Sha256Writer<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        }
    }

    /// Returns the inner writer, the SHA-256 and the byte count.
    pub fn finish(self) -> (W, [u8; 32], u64) {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(self.digest.finish().as_ref());
        (self.inner, hash, self.len)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts a stream to the hub's age recipient. Call `finish()` on the result.
pub fn encrypt_to<W: Write>(
    out: W,
    hub_recipient: &age::x25519::Recipient,
) -> Result<age::stream::StreamWriter<W>, BatchError> {
    let recipients: [&dyn age::Recipient; 1] = [hub_recipient];
    let encryptor =
        age::Encryptor::with_recipients(recipients.into_iter()).map_err(|_| BatchError::Encrypt)?;
    encryptor.wrap_output(out).map_err(BatchError::Io)
}

/// Opens an age-encrypted batch with the hub identity.
pub fn decrypt_with<R: std::io::Read>(
    input: R,
    hub_identity: &age::x25519::Identity,
) -> Result<age::stream::StreamReader<R>, BatchError> {
    let decryptor = age::Decryptor::new(input).map_err(|_| BatchError::Decrypt)?;
    let identities: [&dyn age::Identity; 1] = [hub_identity];
    decryptor
        .decrypt(identities.into_iter())
        .map_err(|_| BatchError::Decrypt)
}

/// The detached signature that travels with a batch (upload header or `.sig` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSignature {
    /// Always [`SIGNATURE_FORMAT_NAME`].
    pub format: String,
    /// Signature format version.
    pub version: u32,
    /// Sending operator.
    pub operator_id: String,
    /// The month.
    pub period: Period,
    /// Linkage-secret epoch of the keys inside.
    pub key_epoch: u32,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// 128 random bits, hex: makes every upload unique so the hub can refuse replays.
    pub nonce: String,
    /// SHA-256 of the whole age ciphertext, hex.
    pub ciphertext_sha256: String,
    /// Length of the ciphertext in bytes.
    pub ciphertext_len: u64,
    /// Records in the batch (also in the encrypted trailer).
    pub row_count: u64,
    /// Fingerprint of the operator's signing public key.
    pub signing_key_fingerprint: String,
    /// Ed25519 signature of [`BatchSignature::signed_message`], base64.
    pub signature: String,
}

/// What a sender knows about a sealed batch before signing it.
#[derive(Debug, Clone)]
pub struct SignatureFields {
    /// Sending operator.
    pub operator_id: String,
    /// The month.
    pub period: Period,
    /// Linkage-secret epoch.
    pub key_epoch: u32,
    /// SHA-256 of the ciphertext.
    pub ciphertext_sha256: [u8; 32],
    /// Ciphertext length.
    pub ciphertext_len: u64,
    /// Records in the batch.
    pub row_count: u64,
}

/// Fingerprint of an Ed25519 public key: first 10 bytes of its SHA-256, grouped.
pub fn signing_key_fingerprint(public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    crate::pseudonym::group_fingerprint(&digest.as_ref()[..10])
}

impl BatchSignature {
    /// Signs a sealed batch with the operator's key pair.
    pub fn sign(fields: SignatureFields, key_pair: &Ed25519KeyPair) -> Self {
        let mut nonce = [0u8; 16];
        // Unwrap safety: the OS random source failing is not recoverable.
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .expect("operating system random generator failed");
        let mut sig = BatchSignature {
            format: SIGNATURE_FORMAT_NAME.into(),
            version: 1,
            operator_id: fields.operator_id,
            period: fields.period,
            key_epoch: fields.key_epoch,
            signed_at: Utc::now(),
            nonce: hex::encode(nonce),
            ciphertext_sha256: hex::encode(fields.ciphertext_sha256),
            ciphertext_len: fields.ciphertext_len,
            row_count: fields.row_count,
            signing_key_fingerprint: signing_key_fingerprint(key_pair.public_key().as_ref()),
            signature: String::new(),
        };
        sig.signature = STANDARD.encode(key_pair.sign(&sig.signed_message()).as_ref());
        sig
    }

    /// The exact bytes the signature covers: every field but the signature, one per line.
    pub fn signed_message(&self) -> Vec<u8> {
        format!(
            "synchro-batch-signature/v{}\noperator={}\nperiod={}\nkey_epoch={}\nsigned_at={}\nnonce={}\nciphertext_sha256={}\nciphertext_len={}\nrow_count={}\nsigning_key={}\n",
            self.version,
            self.operator_id,
            self.period,
            self.key_epoch,
            self.signed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.nonce,
            self.ciphertext_sha256,
            self.ciphertext_len,
            self.row_count,
            self.signing_key_fingerprint,
        )
        .into_bytes()
    }

    /// Checks the signature against an operator's Ed25519 public key.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), BatchError> {
        if self.format != SIGNATURE_FORMAT_NAME || self.version != 1 {
            return Err(BatchError::SignatureFormat(format!(
                "format {:?} version {}, expected {SIGNATURE_FORMAT_NAME:?} version 1",
                self.format, self.version
            )));
        }
        let sig = STANDARD
            .decode(&self.signature)
            .map_err(|_| BatchError::BadSignature)?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&self.signed_message(), &sig)
            .map_err(|_| BatchError::BadSignature)
    }

    /// Parses a signature file or header value.
    pub fn from_json(text: &str) -> Result<Self, BatchError> {
        serde_json::from_str(text).map_err(|e| BatchError::SignatureFormat(e.to_string()))
    }

    /// The JSON form written beside the ciphertext.
    pub fn to_json(&self) -> String {
        // Unwrap safety: a struct of strings and numbers always serialises.
        serde_json::to_string_pretty(self).expect("signature serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::MatchKeys;
    use crate::template::{BirthDateQuality, LivingSituation, NameQuality};

    fn header() -> BatchHeader {
        BatchHeader {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            template_version: 1,
            key_set_version: 1,
            operator_id: "siao-69".into(),
            period: "2026-10".parse().unwrap(),
            key_epoch: 1,
            key_fingerprint: "abcd".into(),
            agent_version: "0.1.0".into(),
            created_at: Utc::now(),
            minimisation: BirthDateMinimisation::BirthYear,
        }
    }

    fn record(i: u32) -> Record {
        Record {
            record_ref: format!("r_{i}"),
            household_ref: None,
            keys: MatchKeys::new(),
            name_quality: NameQuality::Full,
            birth_date_quality: BirthDateQuality::Exact,
            sex: None,
            birth_year: Some(1980),
            age_band: None,
            household_role: None,
            household_size: None,
            living_situation: LivingSituation::Rue,
            first_contact: None,
            last_contact: chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
            municipality: Some("69123".into()),
            nationality: None,
            admin_status: None,
            resources: None,
            siao_request: Some(true),
            social_housing_request: None,
            exit_date: None,
            exit_destination: None,
            needs: vec![],
        }
    }

    #[test]
    fn periods() {
        assert_eq!("2026-10".parse::<Period>().unwrap().to_string(), "2026-10");
        for bad in ["2026-13", "2026-1", "26-10", "2026/10", "", "1999-12"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        let p: Period = "2024-02".parse().unwrap();
        assert_eq!(p.last_day().to_string(), "2024-02-29");
    }

    #[test]
    fn operator_ids() {
        assert!(validate_operator_id("siao-69").is_ok());
        for bad in ["", "A", "Siao", "-x", "a b", "é-x"] {
            assert!(validate_operator_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sealed_round_trip_and_truncation() {
        let identity = age::x25519::Identity::generate();
        let mut sealed = Vec::new();
        {
            let enc = encrypt_to(&mut sealed, &identity.to_public()).unwrap();
            let mut w = PayloadWriter::new(enc, &header()).unwrap();
            for i in 0..3 {
                w.write_record(&record(i)).unwrap();
            }
            w.finish(0).unwrap().finish().unwrap();
        }
        let plain = decrypt_with(&sealed[..], &identity).unwrap();
        let mut r = PayloadReader::new(std::io::BufReader::new(plain)).unwrap();
        assert_eq!(r.header().operator_id, "siao-69");
        let mut n = 0;
        while let Some(rec) = r.next_record().unwrap() {
            assert_eq!(rec, record(n));
            n += 1;
        }
        assert_eq!(r.trailer().unwrap().row_count, 3);
        // Wrong identity.
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            decrypt_with(&sealed[..], &other),
            Err(BatchError::Decrypt)
        ));
        // Truncated ciphertext fails on read.
        let cut = &sealed[..sealed.len() - 20];
        let res = decrypt_with(cut, &identity).and_then(|plain| {
            let mut r = PayloadReader::new(std::io::BufReader::new(plain))?;
            while r.next_record()?.is_some() {}
            Ok(())
        });
        assert!(res.is_err());
    }

    #[test]
    fn payload_without_trailer_is_truncated() {
        let mut buf = Vec::new();
        let mut w = PayloadWriter::new(&mut buf, &header()).unwrap();
        w.write_record(&record(1)).unwrap();
        drop(w);
        let mut r = PayloadReader::new(&buf[..]).unwrap();
        assert!(r.next_record().unwrap().is_some());
        assert!(matches!(r.next_record(), Err(BatchError::Truncated)));
    }

    #[test]
    fn signatures_bind_every_field() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let fields = SignatureFields {
            operator_id: "siao-69".into(),
            period: "2026-10".parse().unwrap(),
            key_epoch: 1,
            ciphertext_sha256: [9u8; 32],
            ciphertext_len: 100,
            row_count: 3,
        };
        let sig = BatchSignature::sign(fields, &kp);
        let pk = kp.public_key().as_ref();
        sig.verify(pk).unwrap();
        let back = BatchSignature::from_json(&sig.to_json()).unwrap();
        back.verify(pk).unwrap();
        let mut other = sig.clone();
        other.operator_id = "ccas-lyon".into();
        assert!(matches!(other.verify(pk), Err(BatchError::BadSignature)));
        let mut other = sig.clone();
        other.period = "2026-11".parse().unwrap();
        assert!(other.verify(pk).is_err());
        let mut other = sig;
        other.nonce = "00".repeat(16);
        assert!(other.verify(pk).is_err());
    }
}
