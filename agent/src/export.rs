//! Reading an operator's export: CSV as software and French Excel write it, and spreadsheets.
//!
//! CSV: UTF-8 with or without BOM, or Windows-1252; `;`, `,`, tab or `|` separated; quoted
//! fields with embedded newlines; streamed row by row. Spreadsheets (XLSX, XLS, ODS) are read
//! with calamine, one sheet at a time (Excel itself stops at 1,048,576 rows).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::Reader as _;
use csv::StringRecord;

use crate::profile::FileOptions;

/// A fatal problem with the file as a whole: nothing is sent.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file cannot be opened or read.
    #[error("{file}: cannot read the file ({source})")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{file}: the file is empty; export the month's records again")]
    Empty {
        /// The file.
        file: String,
    },
    /// Only a header line, no record.
    #[error("{file}: the file has a header line but no record; export the month's records again")]
    HeaderOnly {
        /// The file.
        file: String,
    },
    /// UTF-16 text, as Excel's "Unicode text" saves it.
    #[error("{file}: UTF-16 text; save the export as \"CSV UTF-8\" or \"CSV (separator: semicolon)\" from Excel")]
    Utf16 {
        /// The file.
        file: String,
    },
    /// Binary content that is neither CSV nor a spreadsheet.
    #[error("{file}: binary content (not a CSV text file nor an XLSX workbook); export the data as CSV or XLSX")]
    Binary {
        /// The file.
        file: String,
    },
    /// Invalid UTF-8 where UTF-8 was expected.
    #[error("{file}, line {line}: invalid UTF-8 text; save the export as UTF-8, or set encoding = \"windows-1252\" in the profile's [file] section")]
    Encoding {
        /// The file.
        file: String,
        /// Where.
        line: u64,
    },
    /// The CSV structure cannot be parsed.
    #[error("{file}, line {line}: {message}")]
    Csv {
        /// The file.
        file: String,
        /// Where.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// The spreadsheet cannot be opened.
    #[error("{file}: not a readable spreadsheet (damaged or truncated workbook: {message}); save it again from Excel or export CSV")]
    Workbook {
        /// The file.
        file: String,
        /// The reader's message.
        message: String,
    },
    /// The configured sheet does not exist.
    #[error("{file}: no sheet named {sheet:?}; sheets are: {available}. Fix `file.sheet` in the profile")]
    NoSheet {
        /// The file.
        file: String,
        /// The sheet asked for.
        sheet: String,
        /// The sheets there are.
        available: String,
    },
    /// A profile column is not in the header.
    #[error("{file}, line 1: no column {header:?} for the template field `{field}`; the columns are: {available}. Fix `columns.{field}` in the profile")]
    MissingColumn {
        /// The file.
        file: String,
        /// The template field.
        field: &'static str,
        /// The header the profile names.
        header: String,
        /// The headers there are.
        available: String,
    },
    /// A profile column appears twice in the header.
    #[error("{file}, line 1: the column {header:?} (template field `{field}`) appears twice; rename one of them in the export")]
    AmbiguousColumn {
        /// The file.
        file: String,
        /// The template field.
        field: &'static str,
        /// The repeated header.
        header: String,
    },
}

impl ExportError {
    /// The error in the report's language (French by default), with the fix.
    pub fn describe(&self, lang: crate::report::Lang) -> String {
        use crate::report::Lang::{En, Fr};
        match (self, lang) {
            (_, En) => self.to_string(),
            (ExportError::Io { file, source }, Fr) => format!("{file} : lecture impossible ({source})"),
            (ExportError::Empty { file }, Fr) => format!("{file} : le fichier est vide ; refaites l'export du mois"),
            (ExportError::HeaderOnly { file }, Fr) => format!(
                "{file} : le fichier n'a qu'une ligne d'en-tête et aucun dossier ; refaites l'export du mois"
            ),
            (ExportError::Utf16 { file }, Fr) => format!(
                "{file} : texte UTF-16 ; enregistrez l'export depuis Excel en « CSV UTF-8 » ou « CSV (séparateur : point-virgule) »"
            ),
            (ExportError::Binary { file }, Fr) => format!(
                "{file} : contenu binaire (ni un fichier texte CSV, ni un classeur XLSX) ; exportez les données en CSV ou XLSX"
            ),
            (ExportError::Encoding { file, line }, Fr) => format!(
                "{file}, ligne {line} : texte UTF-8 invalide ; enregistrez l'export en UTF-8 ou indiquez encoding = \"windows-1252\" dans la section [file] du profil"
            ),
            (ExportError::Csv { file, line, message }, Fr) => format!("{file}, ligne {line} : {message}"),
            (ExportError::Workbook { file, message }, Fr) => format!(
                "{file} : classeur illisible (endommagé ou tronqué : {message}) ; enregistrez-le à nouveau depuis Excel ou exportez en CSV"
            ),
            (ExportError::NoSheet { file, sheet, available }, Fr) => format!(
                "{file} : pas de feuille nommée « {sheet} » ; les feuilles sont : {available}. Corrigez `file.sheet` dans le profil"
            ),
            (ExportError::MissingColumn { file, field, header, available }, Fr) => format!(
                "{file}, ligne 1 : pas de colonne « {header} » pour le champ `{field}` du modèle ; les colonnes sont : {available}. Corrigez `columns.{field}` dans le profil"
            ),
            (ExportError::AmbiguousColumn { file, field, header }, Fr) => format!(
                "{file}, ligne 1 : la colonne « {header} » (champ `{field}`) apparaît deux fois ; renommez l'une d'elles dans l'export"
            ),
        }
    }
}

/// One data row: its line in the file and its cells.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line (CSV: line where the record starts; spreadsheet: row number).
    pub line: u64,
    /// Cells, as text.
    pub cells: StringRecord,
}

enum Source {
    Csv(Box<CsvSource>),
    Sheet { rows: std::vec::IntoIter<Row> },
}

/// A CSV reader with the one-record lookahead needed to give physical line numbers.
///
/// The csv crate reports where it stood after the previous record's terminator, which is off
/// after blank lines and with CRLF endings. The physical start line is computed instead from
/// the line where the record ends, minus the newlines inside its quoted fields.
struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// Lines end with CRLF (the `\n` of a record's terminator is consumed with the next record).
    crlf: bool,
    /// The file ends with a newline (else the last record has no terminator).
    ends_with_newline: bool,
    /// The next record, read ahead to know whether the current one is the last.
    ahead: StringRecord,
    /// Line where `ahead` ends, when it holds a record.
    ahead_end: Option<u64>,
    started: bool,
}

impl CsvSource {
    /// Reads one record into `ahead`, noting the line where it ends (csv's view).
    fn read_ahead(&mut self, file: &str) -> Result<(), ExportError> {
        let got = self
            .reader
            .read_record(&mut self.ahead)
            .map_err(|e| csv_error(file, e))?;
        self.ahead_end = got.then(|| self.reader.position().line());
        Ok(())
    }

    fn start_line(&self, record: &StringRecord, end: u64, is_last: bool) -> u64 {
        // The fields sit in one contiguous buffer: one vectorisable pass instead of one per field.
        let embedded = record
            .as_byte_record()
            .as_slice()
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        let terminator_counted = !self.crlf && (!is_last || self.ends_with_newline);
        end.saturating_sub(embedded + u64::from(terminator_counted))
            .max(1)
    }

    /// Moves the next record into `out` (reusing its buffer) and returns its start line.
    fn next(&mut self, file: &str, out: &mut StringRecord) -> Result<Option<u64>, ExportError> {
        if !self.started {
            self.started = true;
            self.read_ahead(file)?;
        }
        let Some(end) = self.ahead_end else {
            return Ok(None);
        };
        std::mem::swap(out, &mut self.ahead);
        self.read_ahead(file)?;
        let is_last = self.ahead_end.is_none();
        Ok(Some(self.start_line(out, end, is_last)))
    }
}

/// An open export, yielding rows.
pub struct Export {
    /// The file name shown in messages.
    pub name: String,
    /// Header cells.
    pub headers: Vec<String>,
    /// Total bytes of the file, for progress.
    pub size: u64,
    source: Source,
}

fn io_err(file: &str) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        file: file.to_string(),
        source,
    }
}

/// The name of a file as shown in reports (its file name, not its full path).
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

const SNIFF: usize = 64 * 1024;

impl Export {
    /// Opens an export with the profile's file options.
    pub fn open(path: &Path, options: &FileOptions) -> Result<Self, ExportError> {
        let name = display_name(path);
        let mut file = File::open(path).map_err(io_err(&name))?;
        let size = file.metadata().map_err(io_err(&name))?.len();
        let mut head = vec![0u8; SNIFF.min(size as usize)];
        file.read_exact(&mut head).map_err(io_err(&name))?;
        if head.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ExportError::Empty { file: name });
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let zip_or_ole =
            head.starts_with(b"PK\x03\x04") || head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
        let spreadsheet = match options.format.as_str() {
            "xlsx" => true,
            "csv" => false,
            _ => zip_or_ole || matches!(extension.as_str(), "xlsx" | "xlsm" | "xls" | "ods"),
        };
        if spreadsheet {
            return Self::open_sheet(path, name, size, options);
        }
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(ExportError::Utf16 { file: name });
        }
        if head.contains(&0) {
            return Err(ExportError::Binary { file: name });
        }
        let has_bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        let utf8 = match options.encoding.as_str() {
            "utf-8" => true,
            "windows-1252" => false,
            _ => has_bom || looks_like_utf8(&head),
        };
        let delimiter = match options.delimiter.as_str() {
            "auto" => sniff_delimiter(&head),
            "\t" => b'\t',
            other => other.as_bytes()[0],
        };
        // Re-open rather than seek: the reader owns the file and chains nothing by hand.
        let file = File::open(path).map_err(io_err(&name))?;
        let reader: Box<dyn Read + Send> = if utf8 {
            let mut r = BufReader::with_capacity(256 * 1024, file);
            if has_bom {
                let mut bom = [0u8; 3];
                r.read_exact(&mut bom).map_err(io_err(&name))?;
            }
            Box::new(r)
        } else {
            Box::new(
                encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding_rs::WINDOWS_1252))
                    .build(BufReader::with_capacity(256 * 1024, file)),
            )
        };
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let first_line_end = head.iter().position(|b| *b == b'\n');
        let crlf = first_line_end.is_some_and(|i| i > 0 && head[i - 1] == b'\r');
        let mut csv = CsvSource {
            reader,
            crlf,
            ends_with_newline: last_byte(path).map_err(io_err(&name))? == Some(b'\n'),
            ahead: StringRecord::new(),
            ahead_end: None,
            started: false,
        };
        let mut header = StringRecord::new();
        if csv.next(&name, &mut header)?.is_none() {
            return Err(ExportError::Empty { file: name });
        }
        let headers = header.iter().map(|h| h.trim().to_string()).collect();
        Ok(Export {
            name,
            headers,
            size,
            source: Source::Csv(Box::new(csv)),
        })
    }

    fn open_sheet(
        path: &Path,
        name: String,
        size: u64,
        options: &FileOptions,
    ) -> Result<Self, ExportError> {
        let workbook_err = |e: calamine::Error| ExportError::Workbook {
            file: name.clone(),
            message: e.to_string(),
        };
        let mut workbook = calamine::open_workbook_auto(path).map_err(workbook_err)?;
        let sheets = workbook.sheet_names().to_vec();
        let sheet = match &options.sheet {
            Some(s) if sheets.contains(s) => s.clone(),
            Some(s) => {
                return Err(ExportError::NoSheet {
                    file: name,
                    sheet: s.clone(),
                    available: sheets.join(", "),
                })
            }
            None => sheets
                .first()
                .cloned()
                .ok_or_else(|| ExportError::Empty { file: name.clone() })?,
        };
        let range = workbook.worksheet_range(&sheet).map_err(workbook_err)?;
        let start_row = range.start().map(|(r, _)| r as u64).unwrap_or(0);
        let mut rows = range.rows().enumerate().map(|(i, cells)| Row {
            line: start_row + i as u64 + 1,
            cells: cells.iter().map(cell_text).collect::<Vec<_>>().into(),
        });
        let header = rows
            .next()
            .ok_or_else(|| ExportError::Empty { file: name.clone() })?;
        let headers = header.cells.iter().map(|h| h.trim().to_string()).collect();
        // Trailing empty rows are common in spreadsheets; they are not records.
        let rows: Vec<Row> = rows
            .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()))
            .collect();
        Ok(Export {
            name,
            headers,
            size,
            source: Source::Sheet {
                rows: rows.into_iter(),
            },
        })
    }

    /// Reads the next data row into `row`; `false` at the end. Blank lines are skipped.
    pub fn next_row(&mut self, row: &mut Row) -> Result<bool, ExportError> {
        match &mut self.source {
            Source::Csv(csv) => loop {
                let Some(line) = csv.next(&self.name, &mut row.cells)? else {
                    return Ok(false);
                };
                if row.cells.iter().any(|c| !c.trim().is_empty()) {
                    row.line = line;
                    return Ok(true);
                }
            },
            Source::Sheet { rows } => match rows.next() {
                Some(next) => {
                    *row = next;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// Bytes read so far (CSV), for the progress bar.
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv(csv) => csv.reader.position().byte(),
            Source::Sheet { .. } => 0,
        }
    }
}

fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

fn csv_error(file: &str, e: csv::Error) -> ExportError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => ExportError::Encoding {
            file: file.to_string(),
            line,
        },
        csv::ErrorKind::Io(_) => ExportError::Csv {
            file: file.to_string(),
            line,
            message: format!("read error: {e}"),
        },
        _ => ExportError::Csv {
            file: file.to_string(),
            line,
            message: e.to_string(),
        },
    }
}

/// Valid UTF-8, allowing a character cut by the sniffing window.
fn looks_like_utf8(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// The separator used in the header line: the most frequent of `;`, `,`, tab, `|` outside quotes.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                for c in counts.iter_mut() {
                    if c.0 == b {
                        c.1 += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|c| c.1)
        .filter(|c| c.1 > 0)
        .map(|c| c.0)
        .unwrap_or(b';')
}

/// A spreadsheet cell as text: dates as ISO dates, whole numbers without ".0".
fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "oui" } else { "non" }.to_string(),
        Data::DateTime(dt) => synchro_shared::normalise::excel_serial_to_date(dt.as_f64())
            .map(|d| d.to_string())
            .unwrap_or_default(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        // "#REF!", "#DIV/0!": a broken formula, reported as a formula problem downstream.
        Data::Error(e) => format!("=#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Headers, then (line, cells) of every row.
    type AllRows = (Vec<String>, Vec<(u64, Vec<String>)>);

    fn read_all(path: &Path) -> Result<AllRows, ExportError> {
        let mut e = Export::open(path, &FileOptions::default())?;
        let mut row = Row {
            line: 0,
            cells: StringRecord::new(),
        };
        let mut rows = Vec::new();
        while e.next_row(&mut row)? {
            rows.push((row.line, row.cells.iter().map(String::from).collect()));
        }
        Ok((e.headers.clone(), rows))
    }

    #[test]
    fn windows_1252_semicolon_with_embedded_newline() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _, _) = encoding_rs::WINDOWS_1252
            .encode("N°;Nom;Situation\r\n1;Lefèvre;\"à la\r\nrue\"\r\n2;Œil;CHRS\r\n");
        let p = write(dir.path(), "x.csv", &bytes);
        let (headers, rows) = read_all(&p).unwrap();
        assert_eq!(headers, vec!["N°", "Nom", "Situation"]);
        assert_eq!(rows[0].1[1], "Lefèvre");
        assert_eq!(rows[0].1[2], "à la\r\nrue");
        assert_eq!(rows[1].0, 4, "line numbers count embedded newlines");
        assert_eq!(rows[1].1[1], "Œil");
    }

    #[test]
    fn physical_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("lf.csv", "h1;h2\n1;\"a\nb\"\n\n2;x\n3;\"c\nd\ne\"\n4;y"),
            (
                "crlf.csv",
                "h1;h2\r\n1;\"a\r\nb\"\r\n\r\n2;x\r\n3;\"c\r\nd\r\ne\"\r\n4;y\r\n",
            ),
        ] {
            let p = write(dir.path(), name, text.as_bytes());
            let (_, rows) = read_all(&p).unwrap();
            let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
            assert_eq!(lines, vec![2, 5, 6, 9], "{name}");
        }
    }

    #[test]
    fn utf8_bom_comma() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", "\u{feff}id,nom\n1,Zoé\n".as_bytes());
        let (headers, rows) = read_all(&p).unwrap();
        assert_eq!(headers, vec!["id", "nom"]);
        assert_eq!(rows[0].1, vec!["1", "Zoé"]);
    }

    #[test]
    fn fatal_file_problems() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_all(&write(dir.path(), "e.csv", b"")),
            Err(ExportError::Empty { .. })
        ));
        assert!(matches!(
            read_all(&write(dir.path(), "b.csv", b"\x00\x01\x02garbage\x00")),
            Err(ExportError::Binary { .. })
        ));
        assert!(matches!(
            read_all(&write(dir.path(), "t.xlsx", b"PK\x03\x04truncated")),
            Err(ExportError::Workbook { .. })
        ));
        let mut bytes = b"id;nom\n".to_vec();
        bytes.extend(std::iter::repeat_n(b"1;abc\n".as_slice(), 20_000).flatten());
        bytes.extend_from_slice(b"2;\xff\xfe\n");
        let opts = FileOptions {
            encoding: "utf-8".into(),
            ..FileOptions::default()
        };
        let p = write(dir.path(), "u.csv", &bytes);
        let mut e = Export::open(&p, &opts).unwrap();
        let mut row = Row {
            line: 0,
            cells: StringRecord::new(),
        };
        let err = loop {
            match e.next_row(&mut row) {
                Ok(true) => continue,
                Ok(false) => panic!("expected an encoding error"),
                Err(err) => break err,
            }
        };
        assert!(
            matches!(err, ExportError::Encoding { line: 20_002, .. }),
            "{err}"
        );
    }

    #[test]
    fn delimiters() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2;3"), b';');
        assert_eq!(sniff_delimiter(b"a,b,\"c;d\"\n"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n"), b'\t');
        assert_eq!(sniff_delimiter(b"abc\n"), b';');
    }
}
