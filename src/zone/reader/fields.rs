//! Record data: each type's fields, read from its tokens and written in wire form; names,
//! character strings, base64, hex, base32hex and type bitmaps.

use super::*;

/// A name token in wire form: `@` is the origin, a name without a final unescaped dot is
/// relative to it. Labels are any octets (RFC 2181 §11); escapes are decoded.
pub(super) fn name_wire(token: &Token<'_>, origin: &[u8]) -> Result<Vec<u8>, String> {
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
                if text.get(i + 1).is_none() {
                    return Err(format!("bad name {}: ends in a backslash", show(text)));
                }
                let (octet, length) = escape_at(text, i)
                    .ok_or_else(|| format!("bad escape in name {}", show(text)))?;
                label.push(octet);
                i += length;
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

/// How one field of a type's presentation form is written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
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
    /// NID's and L64's 64-bit locator: four groups of up to four hex digits (RFC 6742 §2.3).
    Locator64,
}

pub(super) fn fields_of(rtype: RecordType) -> Option<&'static [Field]> {
    use Field::*;
    Some(match u16::from(rtype) {
        1 => &[Ipv4],
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 23 | 39 => &[Name],
        6 => &[Name, Name, U32, Period, Period, Period, Period],
        13 => &[Text, Text],
        14 | 17 => &[Name, Name],
        15 | 18 | 21 | 36 => &[U16, Name],
        16 | 99 => &[Texts],
        19 => &[Text],
        20 | 56 | 258 => &[Texts],
        27 => &[Text, Text, Text],
        57 => &[U16, U8, Algorithm, Base64],
        58 => &[Name, Name],
        104 | 106 => &[U16, Locator64],
        105 => &[U16, Ipv4],
        107 => &[U16, Name],
        32768 => &[U16, Algorithm, U8, Hex],
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
pub(super) fn rdata_wire(
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
        11 => return wks(tokens).map(RDataWire::Wire),
        29 => return loc(tokens).map(RDataWire::Wire),
        42 => return apl(tokens).map(RDataWire::Wire),
        22 => return nsap(tokens).map(RDataWire::Wire),
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
            .map_err(|e| match RecordType::from(u16::from(rtype)) {
                RecordType::Unknown(code) => format!(
                    "{} records are not read in their text form here; write this one in RFC 3597 form (\\# length hex)",
                    type_name(code)
                ),
                _ => format!("bad {rtype} data: {e}"),
            })?;
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
                            push_texts(&mut out, token)?;
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
                    Field::Locator64 => {
                        let groups: Vec<u16> = show(token.text)
                            .split(':')
                            .map(|g| {
                                (g.len() <= 4)
                                    .then(|| u16::from_str_radix(g, 16).ok())
                                    .flatten()
                            })
                            .collect::<Option<_>>()
                            .filter(|g: &Vec<u16>| g.len() == 4)
                            .ok_or_else(|| {
                                format!(
                                    "bad locator {}: four groups of hex digits",
                                    show(token.text)
                                )
                            })?;
                        for group in groups {
                            out.extend_from_slice(&group.to_be_bytes());
                        }
                    }
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
pub(super) fn unreachable_field(field: Field) -> Result<(), String> {
    Err(format!("internal: field {field:?} read as a single token"))
}

/// One <character-string>: its length octet and its octets, escapes decoded.
pub(super) fn push_text(out: &mut Vec<u8>, token: &Token<'_>) -> Result<(), String> {
    let bytes =
        unescape(token.text).ok_or_else(|| format!("bad escape in {}", show(token.text)))?;
    let length = u8::try_from(bytes.len())
        .map_err(|_| format!("a string of {} octets; at most 255 fit", bytes.len()))?;
    out.push(length);
    out.extend(bytes);
    Ok(())
}

/// A string of a list of strings (TXT, SPF, …): one longer than 255 octets is written as as
/// many strings of up to 255 as it needs, as Knot and PowerDNS do (a DKIM key written in one
/// piece means the key, and TXT's strings are read joined).
pub(super) fn push_texts(out: &mut Vec<u8>, token: &Token<'_>) -> Result<(), String> {
    let bytes =
        unescape(token.text).ok_or_else(|| format!("bad escape in {}", show(token.text)))?;
    if bytes.is_empty() {
        out.push(0);
    }
    for piece in bytes.chunks(255) {
        out.push(piece.len() as u8);
        out.extend_from_slice(piece);
    }
    Ok(())
}

pub(super) fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
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

pub(super) fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    data_encoding::BASE64.decode(text).ok()
}

pub(super) fn decode_base32hex(text: &[u8]) -> Option<Vec<u8>> {
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
pub(super) fn type_bitmap(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
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
