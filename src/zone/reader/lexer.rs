//! The lexer: text into entries (logical lines, joined by parentheses) of tokens as written,
//! each with the line it starts on; and the decoding of escapes.

use super::*;

/// One token of an entry: its text as written (escapes not yet decoded, quotes removed).
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub(super) text: &'a [u8],
    pub(super) quoted: bool,
}

/// One entry: a logical line (parentheses join lines), with the line it starts on and whether
/// it starts with blank space (its owner is the previous entry's).
pub(super) struct LexedEntry<'a> {
    pub(super) line: usize,
    pub(super) blank_owner: bool,
    pub(super) tokens: Vec<Token<'a>>,
}

pub(super) struct Lexer<'a> {
    pub(super) text: &'a [u8],
    at: usize,
    pub(super) line: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
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
pub(super) fn show(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

/// Decodes the escapes of `text` (`\DDD` decimal, `\X` the character X); None when a `\DDD`
/// is over 255 or cut short.
pub(super) fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == b'\\' {
            let (octet, length) = escape_at(text, i)?;
            out.push(octet);
            i += length;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// The escape starting at `text[at]` (a backslash): its octet and its length, `\DDD`
/// (decimal) being four long and `\X` two; None when cut short or over 255.
pub(super) fn escape_at(text: &[u8], at: usize) -> Option<(u8, usize)> {
    let next = *text.get(at + 1)?;
    if !next.is_ascii_digit() {
        return Some((next, 2));
    }
    let digits = text.get(at + 1..at + 4)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    Some((u8::try_from(value).ok()?, 4))
}
