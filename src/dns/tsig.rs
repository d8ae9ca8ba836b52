//! TSIG (RFC 8945): the keys the config names, checking a signed request, and signing the
//! response — one message, or each message of a zone transfer in turn (§5.3.1: every message
//! after the first is signed over the previous MAC, itself and only the timers).
//!
//! Hickory-proto does the parts it does well: rebuilding a signed request's to-be-verified
//! bytes (`signed_bitmessage_to_buf`) and the HMACs. The response side is written here because
//! our messages are written by [`super::compose`], not by hickory's `Message`, and hickory's
//! signer has no chained form for the later messages of a transfer. This module never decides
//! who may transfer what; [`super::transfer`] does.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError, signed_bitmessage_to_buf};
use hickory_proto::rr::{LowerName, Name};

use super::wire::lower_wire;

/// How far a request's time may be from ours (RFC 8945 §5.2.3 recommends 300 s).
pub const FUDGE: u16 = 300;
/// The TSIG record's type.
const TSIG: u16 = 250;
/// The ANY class, which TSIG records carry.
const CLASS_ANY: u16 = 255;

/// A shared secret, by name.
pub struct TsigKey {
    /// The key's name, as both sides configure it.
    pub name: Name,
    /// hmac-sha256, hmac-sha384 or hmac-sha512.
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// A key; `algorithm` must be one [`algorithm_named`] returns.
    pub fn new(name: Name, algorithm: TsigAlgorithm, secret: Vec<u8>) -> Self {
        Self {
            name,
            algorithm,
            secret,
        }
    }
}

/// The algorithm a config names (RFC 8945 §6: the HMAC-SHA2 family; SHA-1 and MD5 are not
/// offered), or None.
pub fn algorithm_named(name: &str) -> Option<TsigAlgorithm> {
    match name.to_ascii_lowercase().trim_end_matches('.') {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}

/// Every configured key by its name.
#[derive(Debug, Default)]
pub struct Keys(HashMap<LowerName, Arc<TsigKey>>);

impl Keys {
    /// The keys, each by its (case-insensitive) name.
    pub fn new(keys: impl IntoIterator<Item = TsigKey>) -> Self {
        Self(
            keys.into_iter()
                .map(|key| (LowerName::new(&key.name), Arc::new(key)))
                .collect(),
        )
    }

    /// The key named `name`.
    pub fn get(&self, name: &LowerName) -> Option<&Arc<TsigKey>> {
        self.0.get(name)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request's signature, checked.
pub enum Checked {
    /// Signed with `key` and valid: the response is signed with it, over the request's MAC.
    Valid { key: Arc<TsigKey>, mac: Vec<u8> },
    /// Signed, but not acceptably: the response is NOTAUTH with this TSIG error (§5.2).
    Failed(Failure),
}

/// Why a signed request is not accepted, and what the response says.
pub struct Failure {
    /// BADKEY, BADSIG or BADTIME.
    pub error: TsigError,
    /// The key's name and algorithm as the request gave them.
    key_name: Name,
    algorithm: TsigAlgorithm,
    /// For BADTIME, the key and the request's MAC: that response is signed (§5.2.3).
    signed_by: Option<(Arc<TsigKey>, Vec<u8>)>,
}

/// Checks the TSIG record ending `request`, if it has one (None: unsigned, or no TSIG record
/// where one could be). `now` is the current time in seconds.
pub fn check(request: &[u8], keys: &Keys, now: u64) -> Option<Checked> {
    if !ends_in_tsig(request) {
        return None;
    }
    let (tbv, record) = signed_bitmessage_to_buf(request, None, true).ok()?;
    let tsig = &record.data;
    let failure = |error, signed_by| {
        Checked::Failed(Failure {
            error,
            key_name: record.name.clone(),
            algorithm: tsig.algorithm.clone(),
            signed_by,
        })
    };
    let Some(key) = keys
        .get(&LowerName::new(&record.name))
        .filter(|key| key.algorithm == tsig.algorithm)
    else {
        return Some(failure(TsigError::BadKey, None));
    };
    // Truncated MACs (§5.2.2.1) are not accepted: none of the peers sends them by default.
    if tsig.mac.len() != mac_len(&key.algorithm)
        || key
            .algorithm
            .verify_mac(&key.secret, &tbv, &tsig.mac)
            .is_err()
    {
        return Some(failure(TsigError::BadSig, None));
    }
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        return Some(failure(
            TsigError::BadTime,
            Some((Arc::clone(key), tsig.mac.clone())),
        ));
    }
    Some(Checked::Valid {
        key: Arc::clone(key),
        mac: tsig.mac.clone(),
    })
}

/// Whether the last record of `message` could be a TSIG record: ARCOUNT is not zero and the
/// type two octets after the last owner name is 250. A cheap test before hickory decodes it;
/// the decoding decides.
pub fn ends_in_tsig(message: &[u8]) -> bool {
    message.get(10..12).is_some_and(|count| count != [0, 0])
        && message.windows(2).any(|pair| pair == TSIG.to_be_bytes())
}

fn mac_len(algorithm: &TsigAlgorithm) -> usize {
    match algorithm {
        TsigAlgorithm::HmacSha384 => 48,
        TsigAlgorithm::HmacSha512 => 64,
        _ => 32,
    }
}

/// The seconds since the epoch, for TSIG times.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs the responses to one request, message by message.
pub struct Signer {
    key: Arc<TsigKey>,
    /// The MAC the next message is chained to: the request's, then each response's.
    previous: Vec<u8>,
    first: bool,
    time: u64,
}

impl Signer {
    /// For the responses to a request whose valid signature had `mac`.
    pub fn new(key: Arc<TsigKey>, mac: Vec<u8>, time: u64) -> Self {
        Self {
            key,
            previous: mac,
            first: true,
            time,
        }
    }

    /// For a request of our own (a NOTIFY): signed over the message and the variables alone,
    /// no earlier MAC (RFC 8945 §4.3.1).
    pub fn for_request(key: Arc<TsigKey>, time: u64) -> Self {
        Self::new(key, Vec::new(), time)
    }

    /// Appends a TSIG record to `message` (a whole response, counts written), signed over the
    /// previous MAC and the message: with all of TSIG's variables for the first message, only
    /// the timers for the later ones of a transfer (RFC 8945 §4.3.3, §5.3.1).
    pub fn sign(&mut self, message: &mut Vec<u8>, id: u16) {
        let mut tbs = Vec::with_capacity(message.len() + 128);
        // A request of our own has no earlier MAC, and covers none.
        if !self.previous.is_empty() {
            tbs.extend_from_slice(&(self.previous.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.previous);
        }
        tbs.extend_from_slice(message);
        if self.first {
            variables(
                &mut tbs,
                &self.key.name,
                &self.key.algorithm,
                self.time,
                0,
                &[],
            );
        } else {
            timers(&mut tbs, self.time);
        }
        // An HMAC over a supported algorithm cannot fail; an empty MAC would only be refused.
        let mac = self
            .key
            .algorithm
            .mac_data(&self.key.secret, &tbs)
            .unwrap_or_default();
        append_tsig(
            message,
            &self.key.name,
            &self.key.algorithm,
            self.time,
            &mac,
            id,
            0,
            &[],
        );
        self.previous = mac;
        self.first = false;
    }
}

impl Failure {
    /// The response code that goes with it (§5.2): NOTAUTH.
    pub fn rcode(&self) -> ResponseCode {
        ResponseCode::NotAuth
    }

    /// Appends the TSIG record this failure answers with to `message` (the whole NOTAUTH
    /// response): unsigned with BADKEY or BADSIG, signed with BADTIME and our time as its
    /// other data.
    pub fn append(&self, message: &mut Vec<u8>, id: u16, now: u64) {
        let error = u16::from(self.error);
        match &self.signed_by {
            Some((key, request_mac)) => {
                let other = time48(now);
                let mut tbs = Vec::with_capacity(message.len() + 128);
                tbs.extend_from_slice(&(request_mac.len() as u16).to_be_bytes());
                tbs.extend_from_slice(request_mac);
                tbs.extend_from_slice(message);
                variables(&mut tbs, &key.name, &key.algorithm, now, error, &other);
                let mac = key
                    .algorithm
                    .mac_data(&key.secret, &tbs)
                    .unwrap_or_default();
                append_tsig(
                    message,
                    &key.name,
                    &key.algorithm,
                    now,
                    &mac,
                    id,
                    error,
                    &other,
                );
            }
            None => append_tsig(
                message,
                &self.key_name,
                &self.algorithm,
                now,
                &[],
                id,
                error,
                &[],
            ),
        }
    }
}

/// The 48-bit time of TSIG's wire form.
fn time48(time: u64) -> [u8; 6] {
    let bytes = time.to_be_bytes();
    [bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]
}

/// `name` in canonical (lower-case, uncompressed) wire form.
fn canonical(name: &Name, out: &mut Vec<u8>) {
    out.extend_from_slice(&lower_wire(name));
}

/// TSIG's variables as the MAC covers them (§4.3.3).
fn variables(
    out: &mut Vec<u8>,
    key: &Name,
    algorithm: &TsigAlgorithm,
    time: u64,
    error: u16,
    other: &[u8],
) {
    canonical(key, out);
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    canonical(&algorithm.to_name(), out);
    timers(out, time);
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

/// Time signed and fudge (§4.3.3.1): all a later message of a transfer covers.
fn timers(out: &mut Vec<u8>, time: u64) {
    out.extend_from_slice(&time48(time));
    out.extend_from_slice(&FUDGE.to_be_bytes());
}

/// Appends the TSIG record (§4.2) to `message` and counts it in ARCOUNT.
#[allow(clippy::too_many_arguments)]
fn append_tsig(
    message: &mut Vec<u8>,
    key: &Name,
    algorithm: &TsigAlgorithm,
    time: u64,
    mac: &[u8],
    id: u16,
    error: u16,
    other: &[u8],
) {
    canonical(key, message);
    message.extend_from_slice(&TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let length_at = message.len();
    message.extend_from_slice(&[0, 0]);
    canonical(&algorithm.to_name(), message);
    timers(message, time);
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&error.to_be_bytes());
    message.extend_from_slice(&(other.len() as u16).to_be_bytes());
    message.extend_from_slice(other);
    let length = (message.len() - length_at - 2) as u16;
    message[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    if let Some(count) = message.get_mut(10..12) {
        let additional = u16::from_be_bytes([count[0], count[1]]).saturating_add(1);
        count.copy_from_slice(&additional.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::TSigner;

    use super::*;

    fn key() -> TsigKey {
        TsigKey::new(
            Name::from_ascii("xfr.example.test.").expect("name"),
            TsigAlgorithm::HmacSha256,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        )
    }

    fn signed_request(secret: &[u8], time: u64) -> (Vec<u8>, TSigner) {
        let signer = TSigner::new(
            secret.to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfr.example.test.").expect("name"),
            FUDGE,
        )
        .expect("signer");
        let mut message = Message::new(42, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii("svc.example.test.").expect("name"),
            RecordType::AXFR,
        ));
        let (record, _) = signer.sign_message(&message, time).expect("signs");
        message.signature = Some(record);
        (message.to_vec().expect("encodes"), signer)
    }

    #[test]
    fn a_request_signed_by_hickory_is_valid_and_our_response_verifies_with_hickory() {
        let keys = Keys::new([key()]);
        let now = now();
        let (request, signer) = signed_request(b"0123456789abcdef0123456789abcdef", now);
        let Some(Checked::Valid { key, mac }) = check(&request, &keys, now) else {
            panic!("not valid");
        };
        let mut signing = Signer::new(key, mac.clone(), now);
        // A response: the request's header turned into a response, its question, no records.
        let mut response = request[..request.len()].to_vec();
        response.truncate(12 + 18 + 4);
        response[2] |= 0x80;
        response[10..12].copy_from_slice(&[0, 0]);
        let mut first = response.clone();
        signing.sign(&mut first, 42);
        let (_, _, range) = signer
            .verify_message_byte(&first, Some(&mac), true)
            .expect("hickory verifies our first message");
        assert!(range.contains(&now));
        let first_mac = Message::from_vec(&first)
            .expect("decodes")
            .signature
            .expect("signed")
            .data
            .mac
            .clone();
        let mut second = response.clone();
        signing.sign(&mut second, 42);
        signer
            .verify_message_byte(&second, Some(&first_mac), false)
            .expect("hickory verifies the chained second message");
    }

    #[test]
    fn a_wrong_secret_an_unknown_key_and_a_stale_time_fail_as_the_rfc_says() {
        let keys = Keys::new([key()]);
        let now = now();
        let (wrong, _) = signed_request(b"another secret, another secret!!", now);
        assert!(
            matches!(check(&wrong, &keys, now), Some(Checked::Failed(f)) if f.error == TsigError::BadSig)
        );
        let other_keys = Keys::new([TsigKey::new(
            Name::from_ascii("other.").expect("name"),
            TsigAlgorithm::HmacSha256,
            vec![1; 32],
        )]);
        let (request, _) = signed_request(b"0123456789abcdef0123456789abcdef", now);
        assert!(
            matches!(check(&request, &other_keys, now), Some(Checked::Failed(f)) if f.error == TsigError::BadKey)
        );
        let (stale, _) = signed_request(b"0123456789abcdef0123456789abcdef", now - 301);
        let Some(Checked::Failed(failure)) = check(&stale, &keys, now) else {
            panic!("not BADTIME");
        };
        assert_eq!(failure.error, TsigError::BadTime);
        let mut response = stale[..34].to_vec();
        response[10..12].copy_from_slice(&[0, 0]);
        failure.append(&mut response, 42, now);
        let decoded = Message::from_vec(&response).expect("decodes");
        let tsig = decoded.signature.expect("TSIG").data.clone();
        assert_eq!(tsig.error, Some(TsigError::BadTime));
        assert_eq!(tsig.other, time48(now));
        assert_eq!(tsig.mac.len(), 32, "BADTIME is signed");
        assert!(check(&stale[..34], &keys, now).is_none(), "unsigned");
    }
}
