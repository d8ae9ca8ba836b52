//! Reading zone files safely: regular files only, sizes and `$INCLUDE` depth bounded, so that
//! `$INCLUDE /dev/zero`, a FIFO or a runaway generated file is refused with a message instead
//! of hanging the loader or eating the host's memory.

use std::io::Read;
use std::path::Path;

use crate::error::LoadError;

/// Most bytes a zone's file and everything it `$INCLUDE`s may hold together: far above any real
/// zone (a million hosts is about 40 MB of text), and low enough that `$INCLUDE /dev/zero` or
/// a runaway generated file is refused with a message instead of eating the host's memory.
pub const MAX_ZONE_BYTES: u64 = 1 << 30;

/// Deepest `$INCLUDE` nesting.
pub(super) const MAX_INCLUDE_DEPTH: usize = 8;

/// The text of the zone file at `path`, which must be a regular file of at most `limit` bytes.
/// A device, FIFO or directory is refused before it is opened (opening a FIFO would block).
pub(super) fn read_zone_text(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
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
    // Bytes, not a String: a zone file is octets (a comment in Latin-1, a TXT string with raw
    // octets), as BIND, Knot and NSD read it.
    let mut text = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|e| what(format!("cannot read zone file: {e}")))?;
    if text.len() as u64 > limit {
        return Err(what(too_big(text.len() as u64)));
    }
    Ok(text)
}

pub(super) fn too_big(size: u64) -> String {
    format!(
        "zone file is too large ({size} bytes, with what it includes); a zone may hold at most {MAX_ZONE_BYTES} bytes of text"
    )
}
