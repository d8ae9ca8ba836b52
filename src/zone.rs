//! Zone files: loading RFC 1035 master files into the static record store.
//!
//! Parsing is hickory's; this module adds what an operator needs on top: `file:line` errors,
//! and the zone-level checks a parser does not make (an SOA at the apex, NS at the apex, every
//! name inside the zone, CNAME alone at its name). It never touches the network.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_proto::serialize::txt::Parser;

use crate::error::LoadError;

/// The records of one name, one RRset per type.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Non-empty RRsets, at most one per record type.
    pub rrsets: Vec<RecordSet>,
}

impl Node {
    /// The RRset of `rtype` at this name, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RecordSet> {
        self.rrsets.iter().find(|set| set.record_type() == rtype)
    }
}

/// A parsed and checked zone: the static half of what is served. Immutable once loaded, so
/// snapshots share it by `Arc` and only the dynamic parts change on a health event.
#[derive(Debug, Clone)]
pub struct StaticZone {
    /// The apex, as written in the config (case preserved for answers).
    pub origin: Name,
    /// The apex, lower-cased for lookups.
    pub origin_key: LowerName,
    /// The SOA record at the apex, as in the file.
    pub soa: Record,
    /// Records by owner name.
    pub nodes: HashMap<LowerName, Node>,
    /// The names that exist without static records of their own: empty non-terminals
    /// (`b.zone` when only `a.b.zone` has records), which answer NODATA rather than NXDOMAIN,
    /// and service names. Owner names are not repeated here: in a zone of a million hosts
    /// that copy alone would cost about 170 MB.
    pub recordless: HashSet<LowerName>,
    /// Names below the apex that carry NS records: the delegation points (zone cuts).
    pub cuts: HashSet<LowerName>,
    /// Each name that has a wildcard child, with that child (`name` -> `*.name`): a name
    /// that does not exist needs the wildcard only when its closest encloser is one of them,
    /// so NXDOMAIN costs no `*.` name built per query.
    pub wildcards: HashMap<LowerName, LowerName>,
    /// A hash of the file's text, so a reload can tell an edited zone from an unchanged one.
    pub digest: u64,
}

impl StaticZone {
    /// The SOA serial written in the zone file.
    pub fn file_serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// Whether `name` exists in the zone: it owns records, is a service name, or is an empty
    /// non-terminal above one of those.
    pub fn exists(&self, name: &LowerName) -> bool {
        self.nodes.contains_key(name) || self.recordless.contains(name)
    }

    /// The delegation point (zone cut) at or above `name`, the nearest one, if `name` lies in
    /// a delegated child rather than in this zone's own data.
    pub fn enclosing_cut(&self, name: &LowerName) -> Option<&LowerName> {
        if self.cuts.is_empty() {
            return None;
        }
        let mut current = name.clone();
        while current.num_labels() > self.origin_key.num_labels() {
            if let Some(cut) = self.cuts.get(&current) {
                return Some(cut);
            }
            current = current.base_name();
        }
        None
    }

    /// Records the name `name` as existing (with its ancestors up to the apex), so that a
    /// dynamic service name and the empty non-terminals above it exist like static ones.
    pub fn add_name(&mut self, name: &LowerName) {
        mark_existing(&self.origin_key, &self.nodes, &mut self.recordless, name);
    }
}

/// Adds `name` and its ancestors up to `origin` to `recordless` unless they own records.
/// Stops at an owner or at a name already recorded: each owner marks its own ancestors (every
/// owner is marked when the zone loads), and whoever recorded a name marked its ancestors.
fn mark_existing(
    origin: &LowerName,
    nodes: &HashMap<LowerName, Node>,
    recordless: &mut HashSet<LowerName>,
    name: &LowerName,
) {
    let mut name = name.clone();
    if nodes.contains_key(&name) {
        if name == *origin {
            return;
        }
        name = name.base_name();
    }
    while origin.zone_of(&name) && !nodes.contains_key(&name) && recordless.insert(name.clone()) {
        if name == *origin {
            break;
        }
        name = name.base_name();
    }
}

type Parsed = BTreeMap<RrKey, RecordSet>;

/// Loads and checks the zone file at `path` for the zone `origin`.
pub fn load(path: &Path, origin: &Name) -> Result<StaticZone, LoadError> {
    let text = read_zone_text(path, MAX_ZONE_BYTES)?;
    parse_from(&text, origin, path)
}

/// Parses and checks zone text for `origin` that comes from no file: errors name `<text>`,
/// and `$INCLUDE` paths are relative to the current directory.
pub fn parse(text: &str, origin: &Name) -> Result<StaticZone, LoadError> {
    parse_from(text, origin, Path::new("<text>"))
}

/// Parses and checks zone text for `origin` read from `path` (which errors name and
/// `$INCLUDE` paths are relative to).
fn parse_from(text: &str, origin: &Name, path: &Path) -> Result<StaticZone, LoadError> {
    check_includes(path, text, MAX_ZONE_BYTES.saturating_sub(text.len() as u64))?;
    let parse = |input: &str| {
        Parser::new(input, Some(path.to_path_buf()), Some(origin.clone()))
            .parse()
            .map(|(_, records)| records)
    };
    let records = parse(text).map_err(|error| {
        let line = first_line_where(text, |prefix| parse(prefix).is_err());
        located(path, line, format!("cannot parse zone file: {error}"))
    })?;

    // Each check finds the first offending entry by re-parsing prefixes: see `first_line_where`.
    let blame = |message: String, bad: &dyn Fn(&Parsed) -> bool| {
        let line = first_line_where(text, |prefix| parse(prefix).is_ok_and(|r| bad(&r)));
        located(path, line, message)
    };

    let origin_key = LowerName::new(origin);
    if let Some(key) = records.keys().find(|k| !origin_key.zone_of(&k.name)) {
        let name = key.name.clone();
        return Err(blame(
            format!(
                "{name} is outside the zone {origin}; only names ending in {origin} belong here"
            ),
            &|r| r.keys().any(|k| k.name == name),
        ));
    }
    if let Some(set) = records.values().find(|s| s.dns_class() != DNSClass::IN) {
        let key = RrKey::new(LowerName::new(set.name()), set.record_type());
        return Err(blame(
            format!(
                "{} {} has class {}; only IN is served",
                set.name(),
                set.record_type(),
                set.dns_class()
            ),
            &|r| r.contains_key(&key),
        ));
    }
    for (key, set) in &records {
        if key.record_type == RecordType::SOA && key.name != origin_key {
            return Err(blame(
                format!("SOA at {} which is not the zone apex {origin}", set.name()),
                &|r| r.contains_key(key),
            ));
        }
        if key.record_type == RecordType::CNAME {
            let name = key.name.clone();
            let others =
                |r: &Parsed| r.keys().filter(|k| k.name == name).count() > 1 && r.contains_key(key);
            if others(&records) {
                return Err(blame(
                    format!(
                        "{} has a CNAME and other records; a CNAME must be alone at its name (RFC 1034 §3.6.2)",
                        set.name()
                    ),
                    &others,
                ));
            }
        }
    }

    if let Some(key) = records
        .iter()
        .find(|(_, set)| !fits_a_message(set))
        .map(|(key, _)| key.clone())
    {
        return Err(blame(
            format!(
                "the {} {} RRset grows here past the 65535 bytes a DNS message holds, even over TCP; split it or shorten it",
                key.name, key.record_type
            ),
            &|r| r.get(&key).is_some_and(|set| !fits_a_message(set)),
        ));
    }

    let soa = records
        .get(&RrKey::new(origin_key.clone(), RecordType::SOA))
        .and_then(|set| set.records_without_rrsigs().next().cloned())
        .ok_or_else(|| LoadError::in_file(path, format!("no SOA record at the zone apex {origin}; add one, e.g. `@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 60`")))?;
    if !records.contains_key(&RrKey::new(origin_key.clone(), RecordType::NS)) {
        return Err(LoadError::in_file(
            path,
            format!("no NS records at the zone apex {origin}; list the servers that answer for it"),
        ));
    }

    let mut zone = StaticZone {
        origin: origin.clone(),
        origin_key: origin_key.clone(),
        soa,
        nodes: HashMap::new(),
        recordless: HashSet::new(),
        cuts: HashSet::new(),
        wildcards: HashMap::new(),
        digest: {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(text, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        },
    };
    // The parser's map is sorted by name, so a name's RRsets arrive together; each node gets
    // exactly as many as it has (pushing one by one would reserve four per name, 430 MB of
    // nothing in a zone of a million hosts).
    let mut rrsets = Vec::new();
    let mut records = records.into_iter().peekable();
    while let Some((key, set)) = records.next() {
        if key.record_type == RecordType::NS && key.name != origin_key {
            zone.cuts.insert(key.name.clone());
        }
        if key.name.is_wildcard() {
            zone.wildcards
                .insert(key.name.base_name(), key.name.clone());
        }
        rrsets.push(set);
        if records.peek().is_none_or(|(next, _)| next.name != key.name) {
            let mut exact = Vec::with_capacity(rrsets.len());
            exact.append(&mut rrsets);
            zone.nodes.insert(key.name, Node { rrsets: exact });
        }
    }
    for owner in zone.nodes.keys() {
        mark_existing(&zone.origin_key, &zone.nodes, &mut zone.recordless, owner);
    }
    Ok(zone)
}

/// Most bytes a zone's file and everything it `$INCLUDE`s may hold together: far above any real
/// zone (a million hosts is about 40 MB of text), and low enough that `$INCLUDE /dev/zero` or
/// a runaway generated file is refused with a message instead of eating the host's memory.
pub const MAX_ZONE_BYTES: u64 = 1 << 30;

/// Deepest `$INCLUDE` nesting, as hickory's parser allows.
const MAX_INCLUDE_DEPTH: usize = 8;

/// The text of the zone file at `path`, which must be a regular file of at most `limit` bytes.
/// A device, FIFO or directory is refused before it is opened (opening a FIFO would block).
fn read_zone_text(path: &Path, limit: u64) -> Result<String, LoadError> {
    let what = |message: String| LoadError::in_file(path, message);
    let metadata =
        std::fs::metadata(path).map_err(|e| what(format!("cannot read zone file: {e}")))?;
    if !metadata.is_file() {
        return Err(what(
            "is not a regular file (a device, FIFO or directory); zone files must be regular files"
                .to_string(),
        ));
    }
    if metadata.len() > limit {
        return Err(what(too_big(metadata.len())));
    }
    let file =
        std::fs::File::open(path).map_err(|e| what(format!("cannot read zone file: {e}")))?;
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|e| what(format!("cannot read zone file: {e}")))?;
    if text.len() as u64 > limit {
        return Err(what(too_big(text.len() as u64)));
    }
    Ok(text)
}

fn too_big(size: u64) -> String {
    format!(
        "zone file is too large ({size} bytes, with what it includes); a zone may hold at most {MAX_ZONE_BYTES} bytes of text"
    )
}

/// Checks every file that `text` (the file at `path`) `$INCLUDE`s, and what those include in
/// turn, as [`read_zone_text`] does, with at most `budget` bytes among them. Hickory's parser
/// then reads them itself: these checks keep it from opening a FIFO or reading a device.
fn check_includes(path: &Path, text: &str, budget: u64) -> Result<(), LoadError> {
    let mut budget = budget;
    let mut pending: Vec<(PathBuf, String, usize)> =
        vec![(path.to_path_buf(), text.to_string(), 0)];
    while let Some((file, text, depth)) = pending.pop() {
        for (index, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let directive = words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("$INCLUDE"));
            let Some(target) = words.next().filter(|_| directive) else {
                continue;
            };
            let target = Path::new(target.trim_matches('"'));
            let target = if target.is_absolute() {
                target.to_path_buf()
            } else {
                file.parent().unwrap_or(Path::new(".")).join(target)
            };
            let line = index + 1;
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(LoadError::at(
                    &file,
                    line,
                    format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"),
                ));
            }
            let included = read_zone_text(&target, budget).map_err(|e| {
                LoadError::at(
                    &file,
                    line,
                    format!("$INCLUDE {}: {}", target.display(), e.message),
                )
            })?;
            budget = budget.saturating_sub(included.len() as u64);
            pending.push((target, included, depth + 1));
        }
    }
    Ok(())
}

/// Whether a response carrying just `set`, with its owner as the question, fits the 65,535
/// bytes of a DNS message: what the set needs at the least.
fn fits_a_message(set: &RecordSet) -> bool {
    let mut bytes = Vec::with_capacity(512);
    // The encoder refuses to grow past u16::MAX bytes.
    let mut encoder = BinEncoder::new(&mut bytes);
    // The header, then the question, so the records' names compress as they would.
    let header = encoder.emit_vec(&[0; 12]).is_ok()
        && set.name().emit(&mut encoder).is_ok()
        && encoder.emit_vec(&[0; 4]).is_ok();
    header
        && set
            .records_without_rrsigs()
            .all(|record| record.emit(&mut encoder).is_ok())
        && bytes.len() <= usize::from(u16::MAX)
}

fn located(path: &Path, line: Option<usize>, message: String) -> LoadError {
    match line {
        Some(line) => LoadError::at(path, line, message),
        None => LoadError::in_file(path, message),
    }
}

/// The line of the first entry at which `fails(prefix)` becomes true, where `prefix` is the
/// file up to and including that entry.
///
/// Written by hand because hickory's zone parser reports what is wrong but not where. Entries
/// are logical lines (a parenthesised record spanning lines is one entry), and this runs only
/// when a file is already known to be bad. Most faults lie within one entry, so each entry is
/// first tried on its own (see [`first_failing_alone`]); two prefix parses confirm the one
/// found. Faults that only show in context (a CNAME beside another record) fall back to a
/// binary search over prefixes: O(log n) parses of up to the whole file, which for a million
/// lines is a minute rather than seconds.
fn first_line_where(text: &str, fails: impl Fn(&str) -> bool) -> Option<usize> {
    let entries = entry_ends(text);
    if let Some(index) = first_failing_alone(text, &entries, &fails) {
        let start = index.checked_sub(1).map_or(0, |before| entries[before].0);
        if !fails(&text[..start]) && fails(&text[..entries[index].0]) {
            return Some(entries[index].1);
        }
    }
    bisect_line_where(text, &entries, &fails)
}

/// The binary search of [`first_line_where`]; None if even the whole file does not fail.
fn bisect_line_where(
    text: &str,
    entries: &[(usize, usize)],
    fails: impl Fn(&str) -> bool,
) -> Option<usize> {
    let last = entries.last()?;
    if !fails(&text[..last.0]) {
        return None;
    }
    // Invariant: the prefix through entry `hi - 1` fails; the prefix before entry `lo` does not.
    let (mut lo, mut hi) = (0, entries.len());
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fails(&text[..entries[mid - 1].0]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(entries[lo].1)
}

/// The index of the first entry that fails on its own, parsed with just the context it could
/// need: the last `$ORIGIN` and `$TTL` directives (a default TTL if there is none) and, for an
/// entry with a blank owner, the last entry that named one. None if a file `$INCLUDE`s another
/// (context this cannot carry) or no entry fails alone.
fn first_failing_alone(
    text: &str,
    entries: &[(usize, usize)],
    fails: impl Fn(&str) -> bool,
) -> Option<usize> {
    let directive = |entry: &str, name: &str| {
        entry
            .get(..name.len())
            .is_some_and(|word| word.eq_ignore_ascii_case(name))
    };
    let (mut origin, mut ttl, mut owner) = ("", "$TTL 3600\n", "");
    let mut alone = String::new();
    let mut start = 0;
    for (index, &(end, _)) in entries.iter().enumerate() {
        let entry = &text[start..end];
        start = end;
        let blank_owner = entry.starts_with([' ', '\t']);
        if entry.trim().is_empty() || entry.trim_start().starts_with(';') {
            continue;
        }
        if directive(entry, "$INCLUDE") {
            return None;
        }
        alone.clear();
        for part in [origin, ttl, if blank_owner { owner } else { "" }, entry] {
            alone.push_str(part);
            if !alone.ends_with('\n') {
                alone.push('\n');
            }
        }
        if fails(&alone) {
            return Some(index);
        }
        if directive(entry, "$ORIGIN") {
            origin = entry;
        } else if directive(entry, "$TTL") {
            ttl = entry;
        } else if !blank_owner {
            owner = entry;
        }
    }
    None
}

/// For each logical line of a zone file: the byte offset just past its end, and its first line.
fn entry_ends(text: &str) -> Vec<(usize, usize)> {
    let mut entries = Vec::new();
    let (mut depth, mut in_quote, mut in_comment, mut escaped) = (0usize, false, false, false);
    let (mut line, mut entry_line) = (1, 1);
    for (offset, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if in_comment {
            in_comment = c != '\n';
        } else if in_quote {
            match c {
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
        } else {
            match c {
                '\\' => escaped = true,
                '"' => in_quote = true,
                ';' => in_comment = true,
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if c == '\n' {
            line += 1;
            if depth == 0 && !in_quote {
                entries.push((offset + 1, entry_line));
                entry_line = line;
            }
        }
    }
    if !text[entries.last().map_or(0, |e| e.0)..].trim().is_empty() {
        entries.push((text.len(), entry_line));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zone_file(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("test.zone");
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(body.as_bytes()).expect("write");
        (dir, path)
    }

    fn origin() -> Name {
        Name::from_ascii("svc.example.test.").expect("name")
    }

    const GOOD: &str = "$TTL 300\n@ IN SOA ns1 hostmaster (\n  7 7200 900\n  1209600 60 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\na.b IN TXT \"hi\"\n";

    #[test]
    fn loads_a_good_zone_with_empty_non_terminals() {
        let zone = parse(GOOD, &origin()).expect("loads");
        assert_eq!(zone.file_serial(), 7);
        let ent = LowerName::new(&Name::from_ascii("b.svc.example.test.").expect("name"));
        assert!(zone.exists(&ent));
        assert!(!zone.nodes.contains_key(&ent));
        let www = LowerName::new(&Name::from_ascii("www.svc.example.test.").expect("name"));
        assert!(!zone.exists(&www));
        for name in [
            "ns1.svc.example.test.",
            "a.b.svc.example.test.",
            "svc.example.test.",
        ] {
            let name = LowerName::new(&Name::from_ascii(name).expect("name"));
            assert!(zone.exists(&name), "{name}");
            assert!(
                !zone.recordless.contains(&name),
                "{name} is an owner, not recordless"
            );
        }
        for node in zone.nodes.values() {
            assert_eq!(node.rrsets.capacity(), node.rrsets.len());
        }
    }

    #[test]
    fn every_ancestor_of_an_owner_or_a_service_name_exists() {
        let body =
            format!("{GOOD}x.c.d IN A 192.0.2.3\nd IN TXT \"d\"\ne.f.g.c.d IN A 192.0.2.4\n");
        let mut zone = parse(&body, &origin()).expect("loads");
        zone.add_name(&LowerName::new(
            &Name::from_ascii("www.p.q.svc.example.test.").expect("name"),
        ));
        let name = |s: &str| LowerName::new(&Name::from_ascii(s).expect("name"));
        for existing in [
            "c.d",
            "f.g.c.d",
            "g.c.d",
            "b",
            "www.p.q",
            "p.q",
            "q",
            "d",
            "x.c.d",
            "e.f.g.c.d",
        ] {
            assert!(
                zone.exists(&name(&format!("{existing}.svc.example.test."))),
                "{existing}"
            );
        }
        for missing in ["c", "g.d", "x.d", "www.q", "nx.b"] {
            assert!(
                !zone.exists(&name(&format!("{missing}.svc.example.test."))),
                "{missing}"
            );
        }
        let mut recordless: Vec<String> = zone.recordless.iter().map(|n| n.to_string()).collect();
        recordless.sort();
        let mut expected: Vec<String> = ["b", "c.d", "f.g.c.d", "g.c.d", "p.q", "q", "www.p.q"]
            .iter()
            .map(|n| format!("{n}.svc.example.test."))
            .collect();
        expected.sort();
        assert_eq!(
            recordless, expected,
            "owners are not repeated among recordless names"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse(
            &format!("{GOOD}bad IN A not-an-address\nok IN A 192.0.2.2\n"),
            &origin(),
        )
        .expect_err("must fail");
        assert_eq!(err.line, Some(8), "{err}");
        assert!(err.to_string().contains("<text>:8:"), "{err}");
    }

    #[test]
    fn error_inside_parentheses_names_the_entry_start() {
        let body = "$TTL 300\n@ IN SOA ns1 hostmaster (\n  7 7200 900\n  1209600 60 )\n@ IN NS ns1\nx IN MX (\n 10 )\n";
        let err = parse(body, &origin()).expect_err("must fail");
        assert_eq!(err.line, Some(6), "{err}");
    }

    #[test]
    fn out_of_zone_name_names_its_line() {
        let err = parse(
            &format!("{GOOD}www.other.test. IN A 192.0.2.9\n"),
            &origin(),
        )
        .expect_err("must fail");
        assert_eq!(err.line, Some(8), "{err}");
        assert!(err.message.contains("outside the zone"), "{err}");
    }

    fn fails_to_parse(text: &str) -> bool {
        Parser::new(text, None, Some(origin())).parse().is_err()
    }

    /// A zone with the context an entry can depend on: directives, a blank owner, a record in
    /// parentheses, comments.
    const CONTEXT: &str = "$TTL 300\n@ IN SOA ns1 hostmaster ( 7 7200 900\n  1209600 60 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\n; a comment\n\n$ORIGIN sub.svc.example.test.\nhost IN A 192.0.2.2\n  IN AAAA 2001:db8::2\n$TTL 60\nmail IN MX ( 10\n  host )\n";

    #[test]
    fn an_entry_that_fails_alone_is_found_without_bisecting() {
        let bad_entries = [
            "bad IN A not-an-address\n",
            "  IN AAAA not-an-address\n",
            "x IN MX (\n 10 )\n",
            "$TTL forever\n",
            "y IN NOSUCHTYPE 1\n",
        ];
        for bad in bad_entries {
            for (cut, _) in entry_ends(CONTEXT).into_iter().skip(1) {
                let head = &CONTEXT[..cut];
                let text = format!("{head}{bad}tail IN A 192.0.2.9\n");
                let expected = head.lines().count() + 1;
                let entries = entry_ends(&text);
                assert_eq!(
                    first_line_where(&text, fails_to_parse),
                    Some(expected),
                    "{bad:?} after line {}",
                    expected - 1
                );
                assert_eq!(
                    bisect_line_where(&text, &entries, fails_to_parse),
                    Some(expected),
                    "{bad:?} after line {}",
                    expected - 1
                );
                let found =
                    first_failing_alone(&text, &entries, fails_to_parse).expect("fails alone");
                assert_eq!(entries[found].1, expected, "{bad:?}");
            }
        }
    }

    #[test]
    fn an_entry_that_fails_only_in_context_is_found_by_bisecting() {
        // Alone, each entry of a CNAME clash is fine; only the two together are wrong.
        let text = format!("{CONTEXT}x IN A 192.0.2.3\nx IN CNAME ns1\n");
        let clash = |prefix: &str| {
            Parser::new(prefix, None, Some(origin()))
                .parse()
                .is_ok_and(|(_, r)| {
                    r.keys()
                        .filter(|k| k.name.to_string().starts_with("x."))
                        .count()
                        > 1
                })
        };
        assert_eq!(first_failing_alone(&text, &entry_ends(&text), clash), None);
        assert_eq!(
            first_line_where(&text, clash),
            Some(CONTEXT.lines().count() + 2)
        );
        // $INCLUDE brings context that entries alone cannot carry.
        let text = format!("$INCLUDE other.zone\n{CONTEXT}bad IN A nowhere\n");
        assert_eq!(
            first_failing_alone(&text, &entry_ends(&text), fails_to_parse),
            None
        );
    }

    #[test]
    fn an_include_of_a_device_is_refused_at_its_line() {
        let err = parse(&format!("{GOOD}$INCLUDE /dev/zero\n"), &origin()).expect_err("refused");
        assert_eq!(err.line, Some(8), "{err}");
        assert!(err.message.contains("not a regular file"), "{err}");
    }

    #[test]
    fn an_include_of_a_fifo_is_refused_without_opening_it() {
        let (dir, path) = zone_file(&format!("{GOOD}$INCLUDE pipe.zone\n"));
        nix::unistd::mkfifo(&dir.path().join("pipe.zone"), nix::sys::stat::Mode::S_IRWXU)
            .expect("mkfifo");
        // Opening a FIFO with no writer would block: run it where a hang fails the test.
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(load(&path, &origin()).map(|_| ()));
        });
        let err = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("load returned")
            .expect_err("refused");
        assert!(err.message.contains("not a regular file"), "{err}");
        drop(dir);
    }

    #[test]
    fn a_zone_larger_than_the_limit_is_refused_with_its_size() {
        let (dir, path) = zone_file(GOOD);
        let huge = dir.path().join("huge.zone");
        // Sparse: no disk is written.
        std::fs::File::create(&huge)
            .and_then(|f| f.set_len(MAX_ZONE_BYTES + 1))
            .expect("sparse file");
        let err = load(&huge, &origin()).expect_err("refused");
        assert!(err.message.contains("too large"), "{err}");
        std::fs::write(&path, format!("{GOOD}$INCLUDE huge.zone\n")).expect("write");
        let err = load(&path, &origin()).expect_err("refused");
        assert!(
            err.message.contains("too large") && err.line == Some(8),
            "{err}"
        );
    }

    #[test]
    fn an_rrset_too_large_for_any_message_names_its_line() {
        let mut zone = GOOD.to_string();
        zone.push_str("small IN TXT \"ok\"\n");
        for i in 0..300 {
            zone.push_str(&format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(250)));
        }
        let err = parse(&zone, &origin()).expect_err("refused");
        // The record that takes the set past the limit: about 65,535 / 260 records in.
        assert!(
            err.line.is_some_and(|line| (240..260).contains(&line)),
            "{err}"
        );
        assert!(
            err.message.contains("big.svc.example.test. TXT RRset"),
            "{err}"
        );
    }

    #[test]
    fn cname_with_other_data_is_rejected() {
        let err = parse(
            &format!("{GOOD}x IN A 192.0.2.3\nx IN CNAME ns1\n"),
            &origin(),
        )
        .expect_err("must fail");
        assert_eq!(err.line, Some(9), "{err}");
    }

    #[test]
    fn missing_soa_is_rejected() {
        let err =
            parse("@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n", &origin()).expect_err("must fail");
        assert!(err.message.contains("no SOA"), "{err}");
    }
}
