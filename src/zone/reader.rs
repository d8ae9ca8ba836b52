//! Reading RFC 1035 §5 master files into records: entries, parentheses, quoted strings and
//! escapes, `@`, owner, TTL and class inheritance, `$ORIGIN`, `$TTL` and `$INCLUDE`, and the
//! presentation format of each record type, written out as wire-format RDATA that hickory's
//! decoder then turns into its record types.
//!
//! Written here because no crate reads what BIND, Knot and NSD read: hickory-proto 0.26's
//! zone-file lexer mangles quoted strings inside parentheses, `\DDD` escapes and labels that
//! are not host names, and refuses `@` in record data and pre-signed DNSSEC data; `domain` 0.11's
//! reader refuses TTL units (`1h`, `4D`: 63 of the 132 corpus files) and the presentation form of
//! CAA, TLSA, SSHFP and other common types. Going through wire format keeps every octet of a
//! label or a string as written, and leaves hickory the types it models.
//!
//! Types without a presentation parser here (APL, WKS, …) are handed to hickory's own
//! parser, as before; RFC 3597's `\#` form works for every type. Never touches
//! the network; reads only the files `$INCLUDE` names, within the limits of [`super::files`].

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, Restrict};

use super::files::{MAX_INCLUDE_DEPTH, read_zone_text};
use crate::error::LoadError;

/// The records of a zone file, by owner and type.
pub type Parsed = BTreeMap<RrKey, RecordSet>;

/// TTL of records that come before any TTL is stated (no `$TTL`, none on the record, none
/// earlier): Knot's and NSD's default (BIND would take the SOA's MINIMUM; the differential
/// tests are against Knot).
pub const DEFAULT_TTL: u32 = 3600;

/// Reads the zone text `text` of the file `path` for the zone `origin`, with the files it
/// includes.
pub fn read(text: &str, origin: &Name, path: &Path) -> Result<Parsed, LoadError> {
    let mut reader = Reader {
        records: Parsed::new(),
        ttl: TtlState::default(),
        class: DNSClass::IN,
    };
    let origin = name_wire_of(origin);
    reader.read_file(text, path, origin, 0)?;
    Ok(reader.records)
}

/// What carries over from one entry to the next across files.
struct Reader {
    records: Parsed,
    ttl: TtlState,
    class: DNSClass,
}

#[derive(Default)]
struct TtlState {
    /// `$TTL`, once given.
    default: Option<u32>,
    /// The last TTL stated on a record.
    last: Option<u32>,
}

/// A problem at a line of the file being read.
struct Problem {
    line: usize,
    message: String,
}

fn problem(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

impl Reader {
    fn read_file(
        &mut self,
        text: &str,
        path: &Path,
        origin: Vec<u8>,
        depth: usize,
    ) -> Result<(), LoadError> {
        let mut origin = origin;
        let mut owner: Option<Vec<u8>> = None;
        let located = |p: Problem| {
            LoadError::at(
                path,
                p.line,
                format!("cannot parse zone file: {}", p.message),
            )
        };
        for entry in Lexer::new(text.as_bytes()) {
            let entry = entry.map_err(located)?;
            let Some(first) = entry.tokens.first() else {
                continue;
            };
            if !first.quoted && first.text.first() == Some(&b'$') && !entry.blank_owner {
                let directive = String::from_utf8_lossy(first.text).to_ascii_uppercase();
                let args = &entry.tokens[1..];
                match directive.as_str() {
                    "$ORIGIN" => {
                        let [name] = args else {
                            return Err(located(problem(entry.line, "$ORIGIN takes one name")));
                        };
                        origin = name_wire(name, &origin)
                            .map_err(|m| located(problem(entry.line, m)))?;
                    }
                    "$TTL" => {
                        let [ttl] = args else {
                            return Err(located(problem(entry.line, "$TTL takes one TTL")));
                        };
                        let ttl = parse_ttl(ttl.text).ok_or_else(|| {
                            located(problem(entry.line, format!("bad $TTL {}", show(ttl.text))))
                        })?;
                        self.ttl.default = Some(ttl);
                    }
                    "$INCLUDE" => {
                        let (file, included_origin) = match args {
                            [file] => (file, origin.clone()),
                            [file, name] => (
                                file,
                                name_wire(name, &origin)
                                    .map_err(|m| located(problem(entry.line, m)))?,
                            ),
                            _ => {
                                return Err(located(problem(
                                    entry.line,
                                    "$INCLUDE takes a file and, optionally, an origin",
                                )));
                            }
                        };
                        let target = include_path(path, file.text);
                        if depth >= MAX_INCLUDE_DEPTH {
                            return Err(located(problem(
                                entry.line,
                                format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"),
                            )));
                        }
                        let included = read_zone_text(&target, super::files::MAX_ZONE_BYTES)
                            .map_err(|e| {
                                located(problem(
                                    entry.line,
                                    format!("$INCLUDE {}: {}", target.display(), e.message),
                                ))
                            })?;
                        self.read_file(&included, &target, included_origin, depth + 1)?;
                    }
                    _ => {
                        return Err(located(problem(
                            entry.line,
                            format!("unknown directive {directive}"),
                        )));
                    }
                }
                continue;
            }
            self.record(&entry, &origin, &mut owner).map_err(located)?;
        }
        Ok(())
    }

    /// Reads one record entry.
    fn record(
        &mut self,
        entry: &LexedEntry<'_>,
        origin: &[u8],
        owner: &mut Option<Vec<u8>>,
    ) -> Result<(), Problem> {
        let line = entry.line;
        let mut tokens = entry.tokens.iter().peekable();
        if !entry.blank_owner {
            let token = tokens.next().ok_or_else(|| problem(line, "empty entry"))?;
            *owner = Some(name_wire(token, origin).map_err(|m| problem(line, m))?);
        }
        let owner = owner
            .clone()
            .ok_or_else(|| problem(line, "no owner name: the first record must name its owner"))?;
        // TTL and class, in either order, each optional.
        let mut ttl = None;
        let mut class = None;
        let rtype = loop {
            let token = tokens
                .next()
                .ok_or_else(|| problem(line, "no record type"))?;
            if token.quoted {
                return Err(problem(
                    line,
                    format!("expected a record type, found \"{}\"", show(token.text)),
                ));
            }
            if ttl.is_none()
                && let Some(value) = parse_ttl(token.text)
            {
                ttl = Some(value);
                continue;
            }
            if class.is_none()
                && let Some(value) = parse_class(token.text)
            {
                class = Some(value);
                continue;
            }
            break parse_type(token.text).ok_or_else(|| {
                problem(line, format!("unknown record type {}", show(token.text)))
            })?;
        };
        if let Some(class) = class {
            self.class = class;
        }
        let rest: Vec<&Token<'_>> = tokens.collect();
        let rdata = rdata_wire(rtype, &rest, origin).map_err(|m| problem(line, m))?;
        let ttl = match ttl {
            Some(ttl) => {
                self.ttl.last = Some(ttl);
                ttl
            }
            None => match (self.ttl.default, self.ttl.last) {
                (Some(ttl), _) | (None, Some(ttl)) => ttl,
                (None, None) => {
                    let ttl = DEFAULT_TTL;
                    tracing::warn!(
                        line,
                        ttl,
                        "no TTL is given before line {line} (no $TTL, none on a record): using {ttl}, as Knot and NSD do, until one is"
                    );
                    self.ttl.last = Some(ttl);
                    ttl
                }
            },
        };
        let record =
            build_record(&owner, rtype, self.class, ttl, rdata).map_err(|m| problem(line, m))?;
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        match (rtype, self.records.entry(key)) {
            (RecordType::SOA, MapEntry::Occupied(_)) => {
                return Err(problem(line, "a second SOA record; a zone has one"));
            }
            (_, MapEntry::Vacant(vacant)) => {
                vacant.insert(RecordSet::from(record));
            }
            (_, MapEntry::Occupied(mut occupied)) => {
                occupied.get_mut().insert(record, 0);
            }
        }
        Ok(())
    }
}

/// Where `$INCLUDE file` points: relative to the including file's directory.
fn include_path(including: &Path, file: &[u8]) -> PathBuf {
    let target = PathBuf::from(String::from_utf8_lossy(file).into_owned());
    if target.is_absolute() {
        target
    } else {
        including.parent().unwrap_or(Path::new(".")).join(target)
    }
}

/// A record's data: written here in wire form, or (for types without a parser here) parsed
/// by hickory from the presentation text.
enum RDataWire {
    Wire(Vec<u8>),
    Hickory(RData),
}

fn build_record(
    owner: &[u8],
    rtype: RecordType,
    class: DNSClass,
    ttl: u32,
    rdata: RDataWire,
) -> Result<Record, String> {
    let name = decode_name(owner)?;
    let data = match rdata {
        RDataWire::Hickory(data) => data,
        RDataWire::Wire(wire) => {
            let length = u16::try_from(wire.len())
                .map_err(|_| format!("{rtype} data of {} bytes exceeds 65535", wire.len()))?;
            let mut decoder = BinDecoder::new(&wire);
            match RData::read(&mut decoder, rtype, Restrict::new(length)) {
                Ok(data) => data,
                // Data this reader wrote field by field, that hickory's model of the type
                // refuses (an NSEC3PARAM with unassigned flags, say), is served as it was
                // written, as opaque data (RFC 3597 §5). Not for the RFC 1035 types, whose
                // names are compressed and looked into.
                Err(_) if u16::from(rtype) > 16 => RData::Unknown {
                    code: rtype,
                    rdata: hickory_proto::rr::rdata::NULL::with(wire),
                },
                Err(e) => return Err(format!("bad {rtype} data: {e}")),
            }
        }
    };
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = class;
    Ok(record)
}

fn decode_name(wire: &[u8]) -> Result<Name, String> {
    let mut decoder = BinDecoder::new(wire);
    Name::read(&mut decoder).map_err(|e| format!("bad name: {e}"))
}

fn name_wire_of(name: &Name) -> Vec<u8> {
    let mut name = name.clone();
    name.set_fqdn(true);
    name.to_bytes().unwrap_or_else(|_| vec![0])
}

// ----- Lexing -------------------------------------------------------------------------------

/// One token of an entry: its text as written (escapes not yet decoded, quotes removed).
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a [u8],
    quoted: bool,
}

/// One entry: a logical line (parentheses join lines), with the line it starts on and whether
/// it starts with blank space (its owner is the previous entry's).
struct LexedEntry<'a> {
    line: usize,
    blank_owner: bool,
    tokens: Vec<Token<'a>>,
}

struct Lexer<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<LexedEntry<'a>, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.text;
        loop {
            if self.at >= text.len() {
                return None;
            }
            let start_line = self.line;
            let blank_owner = matches!(text[self.at], b' ' | b'\t');
            let mut tokens = Vec::new();
            let mut depth = 0usize;
            let mut paren_line = 0;
            loop {
                let Some(&byte) = text.get(self.at) else {
                    if depth > 0 {
                        return Some(Err(problem(paren_line, "unclosed parenthesis")));
                    }
                    break;
                };
                match byte {
                    b'\n' => {
                        self.at += 1;
                        self.line += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b';' => {
                        while text.get(self.at).is_some_and(|&b| b != b'\n') {
                            self.at += 1;
                        }
                    }
                    b'(' => {
                        if depth == 0 {
                            paren_line = self.line;
                        }
                        depth += 1;
                        self.at += 1;
                    }
                    b')' => {
                        let Some(less) = depth.checked_sub(1) else {
                            return Some(Err(problem(self.line, "')' without '('")));
                        };
                        depth = less;
                        self.at += 1;
                    }
                    b' ' | b'\t' | b'\r' => self.at += 1,
                    b'"' => {
                        let begin = self.at + 1;
                        let quote_line = self.line;
                        let mut i = begin;
                        loop {
                            match text.get(i) {
                                None => {
                                    return Some(Err(problem(quote_line, "unclosed quote")));
                                }
                                Some(b'"') => break,
                                Some(b'\\') => i += 2,
                                Some(b'\n') => {
                                    self.line += 1;
                                    i += 1;
                                }
                                Some(_) => i += 1,
                            }
                        }
                        let end = i.min(text.len());
                        tokens.push(Token {
                            text: &text[begin..end],
                            quoted: true,
                        });
                        self.at = end + 1;
                    }
                    _ => {
                        let begin = self.at;
                        let mut i = begin;
                        while let Some(&b) = text.get(i) {
                            match b {
                                b'\\' => i += 2,
                                b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' | b'"' => break,
                                _ => i += 1,
                            }
                        }
                        let end = i.min(text.len());
                        tokens.push(Token {
                            text: &text[begin..end],
                            quoted: false,
                        });
                        self.at = end;
                    }
                }
            }
            if tokens.is_empty() {
                continue;
            }
            return Some(Ok(LexedEntry {
                line: start_line,
                blank_owner,
                tokens,
            }));
        }
    }
}

/// A token's text for a message.
fn show(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

/// Decodes the escapes of `text` (`\DDD` decimal, `\X` the character X); None when a `\DDD`
/// is over 255 or cut short.
fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let next = *text.get(i + 1)?;
        if next.is_ascii_digit() {
            let digits = text.get(i + 1..i + 4)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = digits
                .iter()
                .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
            out.push(u8::try_from(value).ok()?);
            i += 4;
        } else {
            out.push(next);
            i += 2;
        }
    }
    Some(out)
}

// ----- Fields -------------------------------------------------------------------------------

/// A name token in wire form: `@` is the origin, a name without a final unescaped dot is
/// relative to it. Labels are any octets (RFC 2181 §11); escapes are decoded.
fn name_wire(token: &Token<'_>, origin: &[u8]) -> Result<Vec<u8>, String> {
    let text = token.text;
    if text == b"@" && !token.quoted {
        return Ok(origin.to_vec());
    }
    if text == b"." {
        return Ok(vec![0]);
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => {
                let next = *text
                    .get(i + 1)
                    .ok_or_else(|| format!("bad name {}: ends in a backslash", show(text)))?;
                if next.is_ascii_digit() {
                    let digits = text
                        .get(i + 1..i + 4)
                        .filter(|d| d.iter().all(u8::is_ascii_digit))
                        .ok_or_else(|| format!("bad escape in name {}", show(text)))?;
                    let value = digits
                        .iter()
                        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
                    label.push(
                        u8::try_from(value)
                            .map_err(|_| format!("bad escape in name {}", show(text)))?,
                    );
                    i += 4;
                } else {
                    label.push(next);
                    i += 2;
                }
            }
            b'.' => {
                if label.is_empty() {
                    return Err(format!("bad name {}: an empty label", show(text)));
                }
                labels.push(std::mem::take(&mut label));
                i += 1;
                if i == text.len() {
                    absolute = true;
                }
            }
            _ => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut wire = Vec::with_capacity(text.len() + 2);
    for label in &labels {
        let length = u8::try_from(label.len())
            .ok()
            .filter(|l| *l <= 63)
            .ok_or_else(|| format!("bad name {}: a label longer than 63 octets", show(text)))?;
        wire.push(length);
        wire.extend_from_slice(label);
    }
    if absolute {
        wire.push(0);
    } else {
        wire.extend_from_slice(origin);
    }
    if wire.len() > 255 {
        return Err(format!("name {} is longer than 255 octets", show(text)));
    }
    Ok(wire)
}

/// A TTL: seconds, or BIND's units (`1w2d3h4m5s`, any case).
fn parse_ttl(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text[0].is_ascii_digit() {
        return None;
    }
    if text.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let mut total: u32 = 0;
    let mut number: Option<u32> = None;
    for &b in text {
        if b.is_ascii_digit() {
            let n = number.unwrap_or(0);
            number = Some(n.checked_mul(10)?.checked_add(u32::from(b - b'0'))?);
            continue;
        }
        let unit = match b.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if let Some(n) = number {
        total = total.checked_add(n)?;
    }
    Some(total)
}

fn parse_class(text: &[u8]) -> Option<DNSClass> {
    let upper = std::str::from_utf8(text).ok()?.to_ascii_uppercase();
    match upper.as_str() {
        "IN" => Some(DNSClass::IN),
        "CH" => Some(DNSClass::CH),
        "HS" => Some(DNSClass::HS),
        "CS" => Some(DNSClass::Unknown(2)),
        _ => {
            let code: u16 = upper.strip_prefix("CLASS")?.parse().ok()?;
            Some(DNSClass::from(code))
        }
    }
}

/// Mnemonics hickory does not know, with their codes (IANA's registry).
const EXTRA_TYPES: &[(&str, u16)] = &[
    ("MD", 3),
    ("MF", 4),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("MINFO", 14),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("PX", 26),
    ("GPOS", 27),
    ("LOC", 29),
    ("KX", 36),
    ("CERT", 37),
    ("DNAME", 39),
    ("APL", 42),
    ("IPSECKEY", 45),
    ("DHCID", 49),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SPF", 99),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("DOA", 259),
    ("AMTRELAY", 260),
    ("TA", 32768),
    ("DLV", 32769),
];

fn parse_type(text: &[u8]) -> Option<RecordType> {
    let upper = std::str::from_utf8(text).ok()?.to_ascii_uppercase();
    if let Some(code) = upper.strip_prefix("TYPE")
        && let Ok(code) = code.parse::<u16>()
    {
        return Some(RecordType::from(code));
    }
    if let Some((_, code)) = EXTRA_TYPES.iter().find(|(name, _)| *name == upper) {
        return Some(RecordType::from(*code));
    }
    let rtype = RecordType::from_str(&upper).ok()?;
    // Meta types are not data.
    (!matches!(
        rtype,
        RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT
    ))
    .then_some(rtype)
}

/// How one field of a type's presentation form is written.
#[derive(Debug, Clone, Copy)]
enum Field {
    Name,
    U8,
    U16,
    U32,
    /// A u32 that may be written with TTL units (SOA timers).
    Period,
    Ipv4,
    Ipv6,
    /// One <character-string>.
    Text,
    /// One or more <character-string>s, to the end.
    Texts,
    /// Base64, the rest of the tokens joined.
    Base64,
    /// Hexadecimal, the rest of the tokens joined.
    Hex,
    /// A DNSSEC algorithm: a number or a mnemonic.
    Algorithm,
    /// A record type (RRSIG's type covered).
    Type,
    /// RRSIG's times: YYYYMMDDHHmmSS or seconds.
    Time,
    /// NSEC3 salt: hex with a length octet, or `-` for none.
    Salt,
    /// NSEC3's next hashed owner: base32hex with a length octet.
    Base32Hex,
    /// A type bitmap (RFC 4034 §4.1.2), to the end.
    Bitmap,
    /// CAA's tag: letters and digits, written with a length octet.
    CaaTag,
    /// CAA's value, URI's target: the rest of the data with no length octet.
    Octets,
    /// EUI48 / EUI64: hex pairs separated by `-`.
    Eui,
    /// CERT's certificate type: a number or a mnemonic (RFC 4398 §2.1).
    CertType,
}

fn fields_of(rtype: RecordType) -> Option<&'static [Field]> {
    use Field::*;
    Some(match u16::from(rtype) {
        1 => &[Ipv4],
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => &[Name],
        6 => &[Name, Name, U32, Period, Period, Period, Period],
        13 => &[Text, Text],
        14 | 17 => &[Name, Name],
        15 | 18 | 21 | 36 => &[U16, Name],
        16 | 99 => &[Texts],
        19 => &[Text],
        26 => &[U16, Name, Name],
        28 => &[Ipv6],
        33 => &[U16, U16, U16, Name],
        35 => &[U16, U16, Text, Text, Text, Name],
        43 | 59 | 32769 => &[U16, Algorithm, U8, Hex],
        44 => &[U8, U8, Hex],
        46 => &[Type, Algorithm, U8, U32, Time, Time, U16, Name, Base64],
        47 => &[Name, Bitmap],
        48 | 60 => &[U16, U8, Algorithm, Base64],
        49 | 61 => &[Base64],
        50 => &[U8, U8, U16, Salt, Base32Hex, Bitmap],
        51 => &[U8, U8, U16, Salt],
        52 | 53 => &[U8, U8, U8, Hex],
        62 => &[U32, U16, Bitmap],
        63 => &[U32, U8, U8, Hex],
        108 | 109 => &[Eui],
        256 => &[U16, U16, Octets],
        257 => &[U8, CaaTag, Octets],
        37 => &[CertType, U16, Algorithm, Base64],
        _ => return None,
    })
}

/// The RDATA of a `rtype` record from its tokens.
fn rdata_wire(
    rtype: RecordType,
    tokens: &[&Token<'_>],
    origin: &[u8],
) -> Result<RDataWire, String> {
    // RFC 3597 §5: `\# length hex`, for any type.
    if let Some(first) = tokens.first()
        && !first.quoted
        && first.text == b"\\#"
    {
        let length: usize = tokens
            .get(1)
            .and_then(|t| std::str::from_utf8(t.text).ok()?.parse().ok())
            .ok_or_else(|| "\\# must be followed by the data's length".to_string())?;
        let hex: Vec<u8> = tokens[2..]
            .iter()
            .flat_map(|t| t.text.iter().copied())
            .collect();
        let data = decode_hex(&hex).ok_or("bad hexadecimal in \\# data")?;
        if data.len() != length {
            return Err(format!(
                "\\# says {length} octets, the data has {}",
                data.len()
            ));
        }
        return Ok(RDataWire::Wire(data));
    }
    match u16::from(rtype) {
        29 => return loc(tokens).map(RDataWire::Wire),
        45 => return ipseckey(tokens, origin).map(RDataWire::Wire),
        64 | 65 => return svcb(tokens, origin).map(RDataWire::Wire),
        _ => {}
    }
    let Some(fields) = fields_of(rtype) else {
        // Hickory's parser for the rest, from the data as written, with the names it holds
        // made absolute (hickory's parser here resolves nothing).
        let mut words = Vec::with_capacity(tokens.len());
        for token in tokens {
            words.push(if token.quoted {
                format!("\"{}\"", show(token.text))
            } else {
                show(token.text)
            });
        }
        let data = RData::try_from_str(rtype, &words.join(" "))
            .map_err(|e| format!("bad {rtype} data: {e}"))?;
        return Ok(RDataWire::Hickory(data));
    };
    let mut out = Vec::new();
    let mut at = 0;
    let missing = |field: Field| format!("{rtype} data ends before its {field:?} field");
    for &field in fields {
        let token = tokens.get(at).copied();
        match field {
            Field::Texts | Field::Base64 | Field::Hex | Field::Bitmap | Field::Octets => {
                let rest = &tokens[at.min(tokens.len())..];
                at = tokens.len();
                match field {
                    Field::Texts => {
                        if rest.is_empty() {
                            return Err(missing(field));
                        }
                        for token in rest {
                            push_text(&mut out, token)?;
                        }
                    }
                    Field::Base64 => {
                        let joined: Vec<u8> =
                            rest.iter().flat_map(|t| t.text.iter().copied()).collect();
                        out.extend(decode_base64(&joined).ok_or("bad base64")?);
                    }
                    Field::Hex => {
                        let joined: Vec<u8> =
                            rest.iter().flat_map(|t| t.text.iter().copied()).collect();
                        if joined != b"-" {
                            out.extend(decode_hex(&joined).ok_or("bad hexadecimal")?);
                        }
                    }
                    Field::Bitmap => out.extend(type_bitmap(rest)?),
                    _ => {
                        for token in rest {
                            out.extend(unescape(token.text).ok_or("bad escape")?);
                        }
                    }
                }
            }
            _ => {
                let token = token.ok_or_else(|| missing(field))?;
                at += 1;
                let number = |max: u64| -> Result<u64, String> {
                    std::str::from_utf8(token.text)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .filter(|n| *n <= max)
                        .ok_or_else(|| format!("bad number {} in {rtype} data", show(token.text)))
                };
                match field {
                    Field::Name => out.extend(name_wire(token, origin)?),
                    Field::U8 => out.push(number(u64::from(u8::MAX))? as u8),
                    Field::U16 => out.extend((number(u64::from(u16::MAX))? as u16).to_be_bytes()),
                    Field::U32 => out.extend((number(u64::from(u32::MAX))? as u32).to_be_bytes()),
                    Field::Period => out.extend(
                        parse_ttl(token.text)
                            .ok_or_else(|| format!("bad period {}", show(token.text)))?
                            .to_be_bytes(),
                    ),
                    Field::Ipv4 => out.extend(
                        show(token.text)
                            .parse::<Ipv4Addr>()
                            .map_err(|_| format!("bad IPv4 address {}", show(token.text)))?
                            .octets(),
                    ),
                    Field::Ipv6 => out.extend(
                        show(token.text)
                            .parse::<Ipv6Addr>()
                            .map_err(|_| format!("bad IPv6 address {}", show(token.text)))?
                            .octets(),
                    ),
                    Field::Text => push_text(&mut out, token)?,
                    Field::Algorithm => out.push(
                        algorithm(token.text)
                            .ok_or_else(|| format!("unknown algorithm {}", show(token.text)))?,
                    ),
                    Field::Type => out.extend(
                        u16::from(
                            parse_type(token.text)
                                .ok_or_else(|| format!("unknown type {}", show(token.text)))?,
                        )
                        .to_be_bytes(),
                    ),
                    Field::Time => out.extend(
                        parse_time(token.text)
                            .ok_or_else(|| format!("bad time {}", show(token.text)))?
                            .to_be_bytes(),
                    ),
                    Field::Salt => {
                        if token.text == b"-" {
                            out.push(0);
                        } else {
                            let salt = decode_hex(token.text).ok_or("bad salt")?;
                            out.push(u8::try_from(salt.len()).map_err(|_| "salt too long")?);
                            out.extend(salt);
                        }
                    }
                    Field::Base32Hex => {
                        let hash = decode_base32hex(token.text).ok_or("bad base32hex")?;
                        out.push(u8::try_from(hash.len()).map_err(|_| "hash too long")?);
                        out.extend(hash);
                    }
                    Field::CaaTag => {
                        let tag = token.text;
                        if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                            return Err(format!("bad CAA tag {}", show(tag)));
                        }
                        out.push(u8::try_from(tag.len()).map_err(|_| "CAA tag too long")?);
                        out.extend_from_slice(tag);
                    }
                    Field::CertType => out.extend(
                        cert_type(token.text)
                            .ok_or_else(|| {
                                format!("unknown certificate type {}", show(token.text))
                            })?
                            .to_be_bytes(),
                    ),
                    Field::Eui => {
                        let hex: Vec<u8> =
                            token.text.iter().copied().filter(|b| *b != b'-').collect();
                        out.extend(decode_hex(&hex).ok_or("bad EUI")?);
                    }
                    _ => unreachable_field(field)?,
                }
            }
        }
    }
    if at < tokens.len() {
        return Err(format!(
            "{rtype} data has more fields than it takes: {}",
            show(tokens[at].text)
        ));
    }
    Ok(RDataWire::Wire(out))
}

/// Multi-token fields are handled before single ones; this is never reached.
fn unreachable_field(field: Field) -> Result<(), String> {
    Err(format!("internal: field {field:?} read as a single token"))
}

/// One <character-string>: its length octet and its octets, escapes decoded.
fn push_text(out: &mut Vec<u8>, token: &Token<'_>) -> Result<(), String> {
    let bytes =
        unescape(token.text).ok_or_else(|| format!("bad escape in {}", show(token.text)))?;
    let length = u8::try_from(bytes.len())
        .map_err(|_| format!("a string of {} octets; at most 255 fit", bytes.len()))?;
    out.push(length);
    out.extend(bytes);
    Ok(())
}

/// A decimal number written with up to `scale` digits after the point, times 10^scale (so
/// `decimal("23.5", 3)` is 23,500); a trailing `m` (metres) is allowed.
fn decimal(text: &[u8], scale: u32) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?;
    let s = s.strip_suffix(['m', 'M']).unwrap_or(s);
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || fraction.len() > scale as usize {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut fraction_value: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..scale as usize {
        fraction_value = fraction_value.checked_mul(10)?;
    }
    let value = whole
        .checked_mul(10i64.checked_pow(scale)?)?
        .checked_add(fraction_value)?;
    Some(if negative { -value } else { value })
}

/// LOC (RFC 1876 §3): `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [siz[m] [hp[m] [vp[m]]]]`.
fn loc(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
    let bad = || "bad LOC data".to_string();
    let mut at = 0;
    // One coordinate: degrees, optional minutes and seconds, then a hemisphere letter.
    let mut coordinate = |positive: u8, negative: u8, max_degrees: i64| -> Result<u32, String> {
        let mut parts = Vec::new();
        loop {
            let token = tokens.get(at).ok_or_else(bad)?;
            at += 1;
            let upper = token.text.to_ascii_uppercase();
            if upper == [positive] || upper == [negative] {
                let [degrees, minutes, seconds] = match parts[..] {
                    [d] => [d, 0, 0],
                    [d, m] => [d, m, 0],
                    [d, m, s] => [d, m, s],
                    _ => return Err(bad()),
                };
                if degrees > max_degrees * 1000 || minutes >= 60_000 || seconds >= 60_000 {
                    return Err(bad());
                }
                // Thousandths of a second of arc, from 2^31 at the equator or meridian.
                let value = degrees / 1000 * 3_600_000 + minutes / 1000 * 60_000 + seconds;
                let signed = if upper == [positive] { value } else { -value };
                return u32::try_from((1i64 << 31) + signed).map_err(|_| bad());
            }
            // Degrees and minutes are whole; seconds may have three decimals.
            parts.push(decimal(token.text, 3).ok_or_else(bad)?);
            if parts.len() > 3 {
                return Err(bad());
            }
        }
    };
    let latitude = coordinate(b'N', b'S', 90)?;
    let longitude = coordinate(b'E', b'W', 180)?;
    let rest = &tokens[at.min(tokens.len())..];
    let altitude = decimal(rest.first().ok_or_else(bad)?.text, 2).ok_or_else(bad)?;
    let altitude = u32::try_from(altitude + 10_000_000).map_err(|_| bad())?;
    // Size, horizontal and vertical precision in centimetres, with RFC 1876's defaults.
    let mut sizes = [100i64, 1_000_000, 1_000];
    for (slot, token) in sizes.iter_mut().zip(rest.iter().skip(1)) {
        *slot = decimal(token.text, 2).filter(|v| *v >= 0).ok_or_else(bad)?;
    }
    if rest.len() > 4 {
        return Err(bad());
    }
    let precision = |centimetres: i64| -> Result<u8, String> {
        let mut exponent = 0u32;
        while exponent < 9 && centimetres >= 10i64.pow(exponent + 1) {
            exponent += 1;
        }
        let mantissa = (centimetres / 10i64.pow(exponent)).min(9);
        u8::try_from(mantissa << 4 | i64::from(exponent)).map_err(|_| bad())
    };
    let mut out = vec![0];
    for size in sizes {
        out.push(precision(size)?);
    }
    out.extend(latitude.to_be_bytes());
    out.extend(longitude.to_be_bytes());
    out.extend(altitude.to_be_bytes());
    Ok(out)
}

/// IPSECKEY (RFC 4025 §3): precedence, gateway type, algorithm, gateway (`.`, an IPv4 or
/// IPv6 address, or a name, as the type says), and an optional base64 public key.
fn ipseckey(tokens: &[&Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("bad IPSECKEY data: {what}");
    let number = |at: usize| -> Result<u8, String> {
        tokens
            .get(at)
            .and_then(|t| std::str::from_utf8(t.text).ok()?.parse().ok())
            .ok_or_else(|| bad("precedence, gateway type and algorithm are numbers 0-255"))
    };
    let (precedence, kind, algorithm) = (number(0)?, number(1)?, number(2)?);
    let gateway = tokens.get(3).ok_or_else(|| bad("no gateway"))?;
    let mut out = vec![precedence, kind, algorithm];
    match kind {
        0 if gateway.text == b"." => {}
        1 => out.extend(
            show(gateway.text)
                .parse::<Ipv4Addr>()
                .map_err(|_| bad("gateway type 1 needs an IPv4 address"))?
                .octets(),
        ),
        2 => out.extend(
            show(gateway.text)
                .parse::<Ipv6Addr>()
                .map_err(|_| bad("gateway type 2 needs an IPv6 address"))?
                .octets(),
        ),
        3 => out.extend(name_wire(gateway, origin)?),
        _ => {
            return Err(bad(
                "gateway type 0 takes '.', types 1-3 an address or a name",
            ));
        }
    }
    let key: Vec<u8> = tokens[4.min(tokens.len())..]
        .iter()
        .flat_map(|t| t.text.iter().copied())
        .collect();
    out.extend(decode_base64(&key).ok_or_else(|| bad("the public key is not base64"))?);
    Ok(out)
}

/// SVCB and HTTPS (RFC 9460 §2.1, appendix A): priority, target, then `key[=value]`
/// parameters in any order, written sorted by key as the wire form requires (§2.2).
fn svcb(tokens: &[&Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("bad SVCB data: {what}");
    let priority: u16 = tokens
        .first()
        .and_then(|t| std::str::from_utf8(t.text).ok()?.parse().ok())
        .ok_or_else(|| bad("no priority"))?;
    let target = tokens.get(1).ok_or_else(|| bad("no target name"))?;
    let mut out = priority.to_be_bytes().to_vec();
    out.extend(name_wire(target, origin)?);
    // Each parameter: `key`, `key=value`, or `key=` followed by a quoted value.
    let mut params: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    let mut rest = tokens[2.min(tokens.len())..].iter().peekable();
    while let Some(token) = rest.next() {
        if token.quoted {
            return Err(bad(&format!(
                "a quoted value without its key: \"{}\"",
                show(token.text)
            )));
        }
        let (key, value): (&[u8], Option<Vec<u8>>) =
            match token.text.iter().position(|b| *b == b'=') {
                None => (token.text, None),
                Some(eq) => {
                    let inline = &token.text[eq + 1..];
                    let value = if inline.is_empty() && rest.peek().is_some_and(|t| t.quoted) {
                        rest.next().map_or(Vec::new(), |t| t.text.to_vec())
                    } else {
                        inline.to_vec()
                    };
                    (&token.text[..eq], Some(value))
                }
            };
        let key = svc_key(key).ok_or_else(|| bad(&format!("unknown key {}", show(key))))?;
        let wire = svc_value(key, value.as_deref()).map_err(|e| bad(&e))?;
        if params.insert(key, wire).is_some() {
            return Err(bad(&format!("key{key} given twice")));
        }
    }
    for (key, value) in params {
        out.extend(key.to_be_bytes());
        out.extend(
            u16::try_from(value.len())
                .map_err(|_| bad("a value over 65535 octets"))?
                .to_be_bytes(),
        );
        out.extend(value);
    }
    Ok(out)
}

/// SvcParamKey names (RFC 9460 §14.3.2, with dohpath RFC 9461, ohttp RFC 9540 and
/// tls-supported-groups from IANA's registry).
fn svc_key(name: &[u8]) -> Option<u16> {
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    Some(match name.as_str() {
        "mandatory" => 0,
        "alpn" => 1,
        "no-default-alpn" => 2,
        "port" => 3,
        "ipv4hint" => 4,
        "ech" => 5,
        "ipv6hint" => 6,
        "dohpath" => 7,
        "ohttp" => 8,
        "tls-supported-groups" => 9,
        _ => name.strip_prefix("key")?.parse().ok()?,
    })
}

/// A comma-separated value list (RFC 9460 appendix A.1): the value's escapes are decoded
/// first, then in what remains a backslash takes the next octet as it is, so `\,` is a comma
/// inside an item (which a zone file writes `\\,`).
fn value_list(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let value = unescape(value)?;
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        match b {
            b'\\' => {
                items.last_mut()?.push(*value.get(i + 1)?);
                i += 2;
            }
            b',' => {
                items.push(Vec::new());
                i += 1;
            }
            _ => {
                items.last_mut()?.push(b);
                i += 1;
            }
        }
    }
    Some(items)
}

/// One SvcParamValue in wire form.
fn svc_value(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let needs = |what: &str| format!("key{key} needs {what}");
    let list = || -> Result<Vec<Vec<u8>>, String> {
        value_list(value.ok_or_else(|| needs("a value"))?)
            .ok_or_else(|| needs("a well-formed list"))
    };
    match key {
        0 => {
            let mut keys = list()?
                .iter()
                .map(|k| svc_key(k).ok_or_else(|| format!("unknown key {} in mandatory", show(k))))
                .collect::<Result<Vec<_>, _>>()?;
            keys.sort_unstable();
            Ok(keys.iter().flat_map(|k| k.to_be_bytes()).collect())
        }
        1 => {
            let mut out = Vec::new();
            for id in list()? {
                let length = u8::try_from(id.len())
                    .ok()
                    .filter(|l| *l > 0)
                    .ok_or_else(|| needs("ALPN ids of 1 to 255 octets"))?;
                out.push(length);
                out.extend(id);
            }
            Ok(out)
        }
        2 | 8 => match value {
            None | Some(b"") => Ok(Vec::new()),
            Some(_) => Err(format!("key{key} takes no value")),
        },
        3 => {
            let port: u16 = value
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .ok_or_else(|| needs("a port number"))?;
            Ok(port.to_be_bytes().to_vec())
        }
        4 => list()?
            .iter()
            .map(|a| {
                show(a)
                    .parse::<Ipv4Addr>()
                    .map(|a| a.octets().to_vec())
                    .map_err(|_| needs("IPv4 addresses"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.concat()),
        6 => list()?
            .iter()
            .map(|a| {
                show(a)
                    .parse::<Ipv6Addr>()
                    .map(|a| a.octets().to_vec())
                    .map_err(|_| needs("IPv6 addresses"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.concat()),
        5 => decode_base64(value.ok_or_else(|| needs("base64"))?).ok_or_else(|| needs("base64")),
        9 => list()?
            .iter()
            .map(|g| {
                show(g)
                    .parse::<u16>()
                    .map(|g| g.to_be_bytes().to_vec())
                    .map_err(|_| needs("TLS group numbers"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.concat()),
        _ => match value {
            None => Ok(Vec::new()),
            Some(v) => unescape(v).ok_or_else(|| needs("a well-escaped value")),
        },
    }
}

/// CERT certificate types (RFC 4398 §2.1).
fn cert_type(text: &[u8]) -> Option<u16> {
    let upper = std::str::from_utf8(text).ok()?.to_ascii_uppercase();
    if let Ok(n) = upper.parse::<u16>() {
        return Some(n);
    }
    Some(match upper.as_str() {
        "PKIX" => 1,
        "SPKI" => 2,
        "PGP" => 3,
        "IPKIX" => 4,
        "ISPKI" => 5,
        "IPGP" => 6,
        "ACPKIX" => 7,
        "IACPKIX" => 8,
        "URI" => 253,
        "OID" => 254,
        _ => return None,
    })
}

fn algorithm(text: &[u8]) -> Option<u8> {
    if let Ok(n) = std::str::from_utf8(text).ok()?.parse::<u8>() {
        return Some(n);
    }
    let upper = std::str::from_utf8(text).ok()?.to_ascii_uppercase();
    Some(match upper.as_str() {
        "RSAMD5" => 1,
        "DH" => 2,
        "DSA" => 3,
        "RSASHA1" => 5,
        "DSA-NSEC3-SHA1" => 6,
        "RSASHA1-NSEC3-SHA1" => 7,
        "RSASHA256" => 8,
        "RSASHA512" => 10,
        "ECC-GOST" => 12,
        "ECDSAP256SHA256" => 13,
        "ECDSAP384SHA384" => 14,
        "ED25519" => 15,
        "ED448" => 16,
        "INDIRECT" => 252,
        "PRIVATEDNS" => 253,
        "PRIVATEOID" => 254,
        _ => return None,
    })
}

/// RRSIG times (RFC 4034 §3.2): `YYYYMMDDHHmmSS` in UTC, or seconds since the epoch.
fn parse_time(text: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(text).ok()?;
    if s.len() != 14 {
        return s.parse().ok();
    }
    let part = |range: std::ops::Range<usize>| s.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (part(0..4)?, part(4..6)?, part(6..8)?);
    let (hour, minute, second) = (part(8..10)?, part(10..12)?, part(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    // Serial arithmetic (RFC 1982): the time modulo 2^32.
    Some(seconds.rem_euclid(1 << 32) as u32)
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    data_encoding::BASE64.decode(text).ok()
}

fn decode_base32hex(text: &[u8]) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for &b in text {
        let value = match b.to_ascii_uppercase() {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'A'..=b'V' => c - b'A' + 10,
            b'=' => continue,
            _ => return None,
        };
        bits = (bits << 5) | u64::from(value);
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// A type bitmap (RFC 4034 §4.1.2) of the types named by `tokens`.
fn type_bitmap(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
    let mut types: Vec<u16> = tokens
        .iter()
        .map(|t| {
            parse_type(t.text)
                .map(u16::from)
                .ok_or_else(|| format!("unknown type {} in a type bitmap", show(t.text)))
        })
        .collect::<Result<_, _>>()?;
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::new();
    let mut index = 0;
    while index < types.len() {
        let window = (types[index] >> 8) as u8;
        let mut bitmap = [0u8; 32];
        let mut used = 0;
        while index < types.len() && (types[index] >> 8) as u8 == window {
            let low = (types[index] & 0xFF) as usize;
            bitmap[low / 8] |= 0x80 >> (low % 8);
            used = used.max(low / 8 + 1);
            index += 1;
        }
        out.push(window);
        out.push(used as u8);
        out.extend_from_slice(&bitmap[..used]);
    }
    Ok(out)
}
