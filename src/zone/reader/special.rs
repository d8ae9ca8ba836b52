//! The types whose presentation form is not a list of fields: LOC (RFC 1876), IPSECKEY
//! (RFC 4025), SVCB/HTTPS (RFC 9460), APL (RFC 3123) and WKS (RFC 1035 §3.4.2).

use super::*;

/// A decimal number written with up to `scale` digits after the point, times 10^scale (so
/// `decimal("23.5", 3)` is 23,500); a trailing `m` (metres) is allowed.
pub(super) fn decimal(text: &[u8], scale: u32) -> Option<i64> {
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
pub(super) fn loc(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
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
pub(super) fn ipseckey(tokens: &[&Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
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

/// APL (RFC 3123 §4): any number of `[!]family:address/prefix` items (family 1 IPv4, 2
/// IPv6), each written as family, prefix length, negation bit and length, and the address
/// without its trailing zero octets.
pub(super) fn apl(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
    let bad = |item: &[u8], what: &str| format!("bad APL item {}: {what}", show(item));
    let mut out = Vec::new();
    for token in tokens {
        let item = token.text;
        let (negated, rest) = match item.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let text = std::str::from_utf8(rest).map_err(|_| bad(item, "not text"))?;
        let (family, rest) = text
            .split_once(':')
            .ok_or_else(|| bad(item, "expected family:address/prefix"))?;
        let (address, prefix) = rest
            .split_once('/')
            .ok_or_else(|| bad(item, "expected family:address/prefix"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad(item, "bad prefix length"))?;
        let (family, octets, bits): (u16, Vec<u8>, u8) = match family {
            "1" => (
                1,
                address
                    .parse::<Ipv4Addr>()
                    .map_err(|_| bad(item, "family 1 needs an IPv4 address"))?
                    .octets()
                    .to_vec(),
                32,
            ),
            "2" => (
                2,
                address
                    .parse::<Ipv6Addr>()
                    .map_err(|_| bad(item, "family 2 needs an IPv6 address"))?
                    .octets()
                    .to_vec(),
                128,
            ),
            _ => return Err(bad(item, "the family is 1 (IPv4) or 2 (IPv6)")),
        };
        if prefix > bits {
            return Err(bad(item, "prefix longer than the address"));
        }
        let used = octets
            .iter()
            .rposition(|&o| o != 0)
            .map_or(0, |last| last + 1);
        out.extend_from_slice(&family.to_be_bytes());
        out.push(prefix);
        out.push(u8::from(negated) << 7 | used as u8);
        out.extend_from_slice(&octets[..used]);
    }
    Ok(out)
}

/// NSAP (RFC 1706 §5): `0x` and hex digits, with `.` anywhere between them for reading.
pub(super) fn nsap(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
    let [token] = tokens else {
        return Err("bad NSAP data: one 0x… value".to_string());
    };
    let hex = token
        .text
        .strip_prefix(b"0x")
        .or_else(|| token.text.strip_prefix(b"0X"))
        .ok_or("bad NSAP data: it starts with 0x")?;
    let digits: Vec<u8> = hex.iter().copied().filter(|b| *b != b'.').collect();
    decode_hex(&digits).ok_or_else(|| "bad NSAP data: not hexadecimal".to_string())
}

/// Well-known services by the names `/etc/services` gives them, for WKS. Built in rather than
/// read from the host, so a zone means the same on every machine.
const SERVICES: &[(&str, u16)] = &[
    ("tcpmux", 1),
    ("echo", 7),
    ("discard", 9),
    ("systat", 11),
    ("daytime", 13),
    ("netstat", 15),
    ("qotd", 17),
    ("chargen", 19),
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("time", 37),
    ("nameserver", 42),
    ("whois", 43),
    ("tacacs", 49),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("ident", 113),
    ("nntp", 119),
    ("ntp", 123),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("irc", 194),
    ("ldap", 389),
    ("https", 443),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
];

/// WKS (RFC 1035 §3.4.2): an IPv4 address, a protocol (a number, `tcp` or `udp`), and the
/// services offered (port numbers or the names in [`SERVICES`]) as a bitmap, one bit per port.
pub(super) fn wks(tokens: &[&Token<'_>]) -> Result<Vec<u8>, String> {
    let bad = |what: String| format!("bad WKS data: {what}");
    let address = tokens
        .first()
        .and_then(|t| show(t.text).parse::<Ipv4Addr>().ok())
        .ok_or_else(|| bad("expected an IPv4 address".into()))?;
    let protocol = tokens.get(1).ok_or_else(|| bad("no protocol".into()))?;
    let protocol = match show(protocol.text).to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        number => number
            .parse::<u8>()
            .map_err(|_| bad(format!("protocol {number}: a number, tcp or udp")))?,
    };
    let mut bitmap: Vec<u8> = Vec::new();
    for token in &tokens[2.min(tokens.len())..] {
        let word = show(token.text).to_ascii_lowercase();
        let port = match word.parse::<u16>() {
            Ok(port) => port,
            Err(_) => SERVICES
                .iter()
                .find(|(name, _)| *name == word)
                .map(|(_, port)| *port)
                .ok_or_else(|| bad(format!("unknown service {word}; give its port number")))?,
        };
        let byte = usize::from(port / 8);
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        bitmap[byte] |= 0x80 >> (port % 8);
    }
    let mut out = address.octets().to_vec();
    out.push(protocol);
    out.extend(bitmap);
    Ok(out)
}

/// SVCB and HTTPS (RFC 9460 §2.1, appendix A): priority, target, then `key[=value]`
/// parameters in any order, written sorted by key as the wire form requires (§2.2).
pub(super) fn svcb(tokens: &[&Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
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
pub(super) fn svc_key(name: &[u8]) -> Option<u16> {
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
pub(super) fn value_list(value: &[u8]) -> Option<Vec<Vec<u8>>> {
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

/// The items of a value list, each written by `write`, one after another; `refused` when an
/// item is not what `write` takes.
fn each_item(
    items: &[Vec<u8>],
    refused: &str,
    write: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for item in items {
        out.extend(write(&show(item)).ok_or_else(|| refused.to_string())?);
    }
    Ok(out)
}

/// One SvcParamValue in wire form.
pub(super) fn svc_value(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
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
        4 => each_item(&list()?, &needs("IPv4 addresses"), |a| {
            Some(a.parse::<Ipv4Addr>().ok()?.octets().to_vec())
        }),
        6 => each_item(&list()?, &needs("IPv6 addresses"), |a| {
            Some(a.parse::<Ipv6Addr>().ok()?.octets().to_vec())
        }),
        5 => decode_base64(value.ok_or_else(|| needs("base64"))?).ok_or_else(|| needs("base64")),
        9 => each_item(&list()?, &needs("TLS group numbers"), |g| {
            Some(g.parse::<u16>().ok()?.to_be_bytes().to_vec())
        }),
        _ => match value {
            None => Ok(Vec::new()),
            Some(v) => unescape(v).ok_or_else(|| needs("a well-escaped value")),
        },
    }
}
