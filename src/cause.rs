//! What went wrong, in an operator's words: the innermost cause of an error ("connection
//! refused", not "error sending request for url"), for check results, webhook failures and
//! the command line. Pure: it only reads the error it is given.

use std::borrow::Cow;
use std::error::Error;
use std::io;

/// What a system call that found this host out of file descriptors (EMFILE, ENFILE) says: the
/// server's own exhaustion, never a member's fault (see `health::state::NO_DESCRIPTORS`).
pub const OUT_OF_DESCRIPTORS: &str = "no result: this host is out of file descriptors";
/// A script check that found every one of `max_scripts` slots taken: no result about the
/// member either.
pub const NO_SCRIPT_SLOT: &str = "no result: every max_scripts slot is taken";

/// The innermost cause of an error, which is the part an operator can act on
/// ("connection refused", not "error sending request for url"), in words for a log.
pub fn root_cause(error: &(dyn Error + 'static)) -> String {
    cause_of(error).into_owned()
}

pub fn cause_of(error: &(dyn Error + 'static)) -> Cow<'static, str> {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<io::Error>() {
        Some(io_error) => describe_io(io_error),
        None => cause.to_string().into(),
    }
}

pub fn describe_io(error: &io::Error) -> Cow<'static, str> {
    if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        return OUT_OF_DESCRIPTORS.into();
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::UnexpectedEof => "connection closed before a response".into(),
        _ => error.to_string().into(),
    }
}
