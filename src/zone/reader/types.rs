//! Scalars of the presentation format: TTLs, classes, record types, DNSSEC algorithms, CERT
//! types and RRSIG times.

use super::*;

/// A TTL: seconds, or BIND's units (`1w2d3h4m5s`, any case).
pub(super) fn parse_ttl(text: &[u8]) -> Option<u32> {
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

pub(super) fn parse_class(text: &[u8]) -> Option<DNSClass> {
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
pub(super) const EXTRA_TYPES: &[(&str, u16)] = &[
    ("MD", 3),
    ("WKS", 11),
    ("MF", 4),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("MINFO", 14),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("NSAP", 22),
    ("NSAP-PTR", 23),
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

pub(super) fn parse_type(text: &[u8]) -> Option<RecordType> {
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

/// The mnemonic of the type `code` where we know one, else `TYPEnnn`.
pub(super) fn type_name(code: u16) -> String {
    EXTRA_TYPES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("TYPE{code}"), |(name, _)| (*name).to_string())
}

/// CERT certificate types (RFC 4398 §2.1).
pub(super) fn cert_type(text: &[u8]) -> Option<u16> {
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

pub(super) fn algorithm(text: &[u8]) -> Option<u8> {
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
pub(super) fn parse_time(text: &[u8]) -> Option<u32> {
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
