//! Finding the line to blame for a problem of the zone as a whole (a name outside it, a CNAME
//! beside other data, an RRset too large): the entry that makes it so is found by reading
//! parts of the file again (only once a file is known bad). Syntax errors need none of this:
//! the reader names their line.

use std::path::Path;

use crate::error::LoadError;

pub(super) fn located(path: &Path, line: Option<usize>, message: String) -> LoadError {
    match line {
        Some(line) => LoadError::at(path, line, message),
        None => LoadError::in_file(path, message),
    }
}

/// The line of the first entry at which `fails(prefix)` becomes true, where `prefix` is the
/// file up to and including that entry.
///
/// Written by hand because such a problem belongs to a set of records, not to a line. Entries
/// are logical lines (a parenthesised record spanning lines is one entry), and this runs only
/// when a file is already known to be bad. Most faults lie within one entry, so each entry is
/// first tried on its own (see [`first_failing_alone`]); two prefix parses confirm the one
/// found. Faults that only show in context (a CNAME beside another record) fall back to a
/// binary search over prefixes: O(log n) parses of up to the whole file, which for a million
/// lines is a minute rather than seconds.
pub(super) fn first_line_where(text: &[u8], fails: impl Fn(&[u8]) -> bool) -> Option<usize> {
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
pub(super) fn bisect_line_where(
    text: &[u8],
    entries: &[(usize, usize)],
    fails: impl Fn(&[u8]) -> bool,
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
pub(super) fn first_failing_alone(
    text: &[u8],
    entries: &[(usize, usize)],
    fails: impl Fn(&[u8]) -> bool,
) -> Option<usize> {
    let directive = |entry: &[u8], name: &str| {
        entry
            .get(..name.len())
            .is_some_and(|word| word.eq_ignore_ascii_case(name.as_bytes()))
    };
    let (mut origin, mut ttl, mut owner): (&[u8], &[u8], &[u8]) = (b"", b"$TTL 3600\n", b"");
    let mut alone = Vec::new();
    let mut start = 0;
    for (index, &(end, _)) in entries.iter().enumerate() {
        let entry = &text[start..end];
        start = end;
        let blank_owner = entry.starts_with(b" ") || entry.starts_with(b"\t");
        if entry.trim_ascii().is_empty() || entry.trim_ascii_start().starts_with(b";") {
            continue;
        }
        if directive(entry, "$INCLUDE") {
            return None;
        }
        alone.clear();
        for part in [origin, ttl, if blank_owner { owner } else { b"" }, entry] {
            alone.extend_from_slice(part);
            if !alone.ends_with(b"\n") {
                alone.push(b'\n');
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
pub(super) fn entry_ends(text: &[u8]) -> Vec<(usize, usize)> {
    let mut entries = Vec::new();
    let (mut depth, mut in_quote, mut in_comment, mut escaped) = (0usize, false, false, false);
    let (mut line, mut entry_line) = (1, 1);
    for (offset, &c) in text.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_comment {
            in_comment = c != b'\n';
        } else if in_quote {
            match c {
                b'\\' => escaped = true,
                b'"' => in_quote = false,
                _ => {}
            }
        } else {
            match c {
                b'\\' => escaped = true,
                b'"' => in_quote = true,
                b';' => in_comment = true,
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if c == b'\n' {
            line += 1;
            if depth == 0 && !in_quote {
                entries.push((offset + 1, entry_line));
                entry_line = line;
            }
        }
    }
    if !text[entries.last().map_or(0, |e| e.0)..]
        .trim_ascii()
        .is_empty()
    {
        entries.push((text.len(), entry_line));
    }
    entries
}
