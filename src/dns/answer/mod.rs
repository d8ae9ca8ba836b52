//! The answer function: from a snapshot and a query to a response, per RFC 1034 §4.3.2.
//!
//! Pure: no I/O, no locks, no awaits. Everything about what a response contains — rcode, AA,
//! the records of each section — is decided here and nowhere else, so it is tested here.

use std::borrow::Cow;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::wire::additional_target;
use crate::snapshot::{Snapshot, ZoneSnapshot};
use crate::zone::{Node, labels};

/// The parts of a request the answer depends on.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The request's opcode; only QUERY is answered.
    pub op_code: OpCode,
    /// The questions; exactly one is expected.
    pub questions: &'a [Question<'a>],
    /// The EDNS version, when the request carried an OPT record.
    pub edns_version: Option<u8>,
}

/// One question of a request.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The name asked for, lower-cased (the echoed question keeps the client's case).
    pub name: &'a LowerName,
    /// The type asked for.
    pub qtype: RecordType,
    /// The class asked for.
    pub qclass: DNSClass,
}

/// A response's content, borrowing records from the snapshot where it can.
#[derive(Debug, Default)]
pub struct Response<'s> {
    /// The response code.
    pub rcode: ResponseCode,
    /// The AA flag: set on answers from our zones' own data, clear on referrals and errors.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Cow<'s, Record>>,
    /// The authority section.
    pub authority: Vec<Cow<'s, Record>>,
    /// The additional section (the OPT record is added by the server, not here).
    pub additional: Vec<Cow<'s, Record>>,
}

impl Response<'_> {
    fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            ..Self::default()
        }
    }

    /// The delegation this response refers to, when its authority section holds a child's NS
    /// records (only referrals put NS there): the addresses below it are glue.
    pub fn referral_cut(&self) -> Option<LowerName> {
        self.authority
            .iter()
            .find(|r| r.record_type() == RecordType::NS)
            .map(|r| LowerName::new(&r.name))
    }
}

/// Most CNAMEs followed inside one zone before answering with what was found so far.
const MAX_CNAME_CHAIN: usize = 8;

/// Answers `query` from `snapshot`.
pub fn answer<'s>(snapshot: &'s Snapshot, query: &Query<'_>) -> Response<'s> {
    if query.op_code != OpCode::Query {
        return Response::error(ResponseCode::NotImp);
    }
    if query.edns_version.is_some_and(|v| v > 0) {
        return Response::error(ResponseCode::BADVERS);
    }
    let [question] = query.questions else {
        return Response::error(ResponseCode::FormErr);
    };
    if question.qclass == DNSClass::CH {
        return chaos(snapshot, question);
    }
    // QCLASS ANY (RFC 1035 §3.2.5) matches our IN data, as Knot and NSD treat it; the
    // CHAOS server-identity names are answered by the server before this point.
    if !matches!(question.qclass, DNSClass::IN | DNSClass::ANY) {
        return Response::error(ResponseCode::Refused);
    }
    if matches!(question.qtype, RecordType::AXFR | RecordType::IXFR) {
        // Zone transfers are not offered (yet); refuse like a server with no transfer ACL.
        return Response::error(ResponseCode::Refused);
    }
    let Some(zone) = snapshot.zone_for(question.name) else {
        return Response::error(ResponseCode::Refused);
    };
    let mut response = Response {
        authoritative: true,
        ..Response::default()
    };
    Lookup {
        zone,
        response: &mut response,
    }
    .resolve(question.name, question.qtype, 0);
    response
}

/// The CHAOS-class TXT names that identify a server (RFC 4892 §2.3, and BIND's `.bind`
/// names): answered without AA and with TTL 0, like Knot; everything else in CH is refused.
fn chaos<'s>(snapshot: &'s Snapshot, question: &Question<'_>) -> Response<'s> {
    let text = match question.name.to_string().as_str() {
        _ if question.qtype != RecordType::TXT => None,
        "id.server." | "hostname.bind." => Some(&snapshot.server.identity),
        "version.server." | "version.bind." => Some(&snapshot.server.version),
        _ => None,
    };
    match text.filter(|t| !t.is_empty()) {
        Some(text) => {
            let mut record = Record::from_rdata(
                Name::from(question.name),
                0,
                RData::TXT(TXT::new(vec![text.clone()])),
            );
            record.dns_class = DNSClass::CH;
            Response {
                answers: vec![Cow::Owned(record)],
                ..Response::default()
            }
        }
        None => Response::error(ResponseCode::Refused),
    }
}

/// One lookup in one zone, appending to a response.
struct Lookup<'s, 'r> {
    zone: &'s ZoneSnapshot,
    response: &'r mut Response<'s>,
}

impl<'s> Lookup<'s, '_> {
    fn resolve(&mut self, name: &LowerName, qtype: RecordType, chain: usize) {
        let cut = self.cut_above(name, qtype);
        let dname = self.zone.data.dname_above(name);
        // Whichever is met first on the way down from the apex decides.
        match (cut, dname) {
            (Some(cut), Some(owner)) if labels(cut) <= labels(owner) => {
                return self.refer(cut);
            }
            (_, Some(owner)) => return self.redirect(owner, name, qtype, chain),
            (Some(cut), None) => return self.refer(cut),
            (None, None) => {}
        }
        let static_node = self.zone.data.nodes.get(name);
        if static_node.is_some() || self.zone.services.contains_key(name) {
            return self.answer_at(name, static_node, None, qtype, chain);
        }
        if self.zone.data.recordless.contains(name) {
            // An empty non-terminal: the name exists, with no records (RFC 8020).
            return self.no_data();
        }
        match self.wildcard_for(name) {
            // A wildcard that owns NS is a delegation like any other (RFC 4592 §4.2 leaves its
            // meaning open): the names it covers are referred to it, as Knot does; DS stays
            // this side's (NODATA).
            Some((owner, _)) if self.zone.data.cuts.contains(owner) && qtype != RecordType::DS => {
                self.refer(owner)
            }
            Some((_, wildcard)) => self.answer_at(name, Some(wildcard), Some(name), qtype, chain),
            None => self.name_error(),
        }
    }

    /// The highest zone cut at or above `name` (below the apex), where authority ends. A DS
    /// query at the cut itself belongs to this side (RFC 4035 §3.1.4.1).
    fn cut_above(&self, name: &LowerName, qtype: RecordType) -> Option<&'s LowerName> {
        let cuts = &self.zone.data.cuts;
        if cuts.is_empty() {
            return None;
        }
        let origin_labels = labels(&self.zone.data.origin_key);
        let mut found = None;
        let mut current = name.clone();
        while labels(&current) > origin_labels {
            let at_query = labels(&current) == labels(name);
            if !(at_query && qtype == RecordType::DS)
                && let Some(cut) = cuts.get(&current)
            {
                found = Some(cut);
            }
            current = current.base_name();
        }
        found
    }

    /// A name below the DNAME at `owner` (RFC 6672 §3.2): the DNAME, a CNAME from `name` to
    /// the name with `owner` replaced by the DNAME's target (the DNAME's TTL), and, inside the
    /// zone, what that name answers. A name that would grow past 255 octets is YXDOMAIN.
    fn redirect(
        &mut self,
        owner: &'s LowerName,
        name: &LowerName,
        qtype: RecordType,
        chain: usize,
    ) {
        let Some(dname) = self
            .zone
            .data
            .nodes
            .get(owner)
            .and_then(|node| node.rrset(RecordType::DNAME))
            .and_then(|set| set.records_without_rrsigs().next())
        else {
            return self.name_error();
        };
        let Some(target) = dname_target(dname) else {
            return self.name_error();
        };
        let prefix = labels(name).saturating_sub(labels(owner));
        let asked = Name::from(name);
        let labels: Vec<&[u8]> = asked.iter().take(usize::from(prefix)).collect();
        let Ok(synthesised) =
            Name::from_labels(labels).and_then(|prefix| prefix.append_domain(&target))
        else {
            self.response.rcode = ResponseCode::YXDomain;
            self.response.answers.push(Cow::Borrowed(dname));
            return;
        };
        self.response.answers.push(Cow::Borrowed(dname));
        let mut cname = Record::from_rdata(
            asked,
            dname.ttl,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(synthesised.clone())),
        );
        cname.dns_class = dname.dns_class;
        self.response.answers.push(Cow::Owned(cname));
        let target = LowerName::new(&synthesised);
        // Asked for the CNAME, the synthesised one is the answer (as for a CNAME in the data).
        if qtype != RecordType::CNAME
            && chain < MAX_CNAME_CHAIN
            && self.zone.data.origin_key.zone_of(&target)
            && !self.seen(&target)
        {
            self.resolve(&target, qtype, chain + 1);
        }
    }

    /// The wildcard that synthesises `name` (RFC 4592 §3.3.1), its owner and node: `*.` under
    /// the closest encloser, the nearest existing ancestor.
    fn wildcard_for(&self, name: &LowerName) -> Option<(&'s LowerName, &'s Node)> {
        if self.zone.data.wildcards.is_empty() {
            return None;
        }
        let mut encloser = name.base_name();
        while !self.zone.data.exists(&encloser) {
            if labels(&encloser) <= labels(&self.zone.data.origin_key) {
                break;
            }
            encloser = encloser.base_name();
        }
        let wildcard = self.zone.data.wildcards.get(&encloser)?;
        Some((wildcard, self.zone.data.nodes.get(wildcard)?))
    }

    /// Answers from the records at `name`; `synthesised` is the query name when `node` is a
    /// wildcard whose records must be renamed.
    fn answer_at(
        &mut self,
        name: &LowerName,
        node: Option<&'s Node>,
        synthesised: Option<&LowerName>,
        qtype: RecordType,
        chain: usize,
    ) {
        let service = self
            .zone
            .services
            .get(name)
            .filter(|_| synthesised.is_none());
        let rename = |records: Vec<&'s Record>| -> Vec<Cow<'s, Record>> {
            match synthesised {
                None => records.into_iter().map(Cow::Borrowed).collect(),
                Some(owner) => records
                    .into_iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.name = Name::from(owner);
                        Cow::Owned(r)
                    })
                    .collect(),
            }
        };
        let zone = self.zone;
        let at_apex = *name == zone.data.origin_key;
        // The apex SOA is served from the snapshot: its serial moves with every answer change.
        let static_set = |rtype: RecordType| -> Vec<&'s Record> {
            if at_apex && rtype == RecordType::SOA {
                return vec![&zone.soa];
            }
            node.and_then(|n| n.rrset(rtype))
                .map(|set| set.records_without_rrsigs().collect())
                .unwrap_or_default()
        };

        let cname = static_set(RecordType::CNAME);
        // RRSIG and NSEC records live beside a CNAME (RFC 4035 §2.5): asked for, they are the
        // node's own data, not the target's, as Knot answers.
        let beside_cname = matches!(
            qtype,
            RecordType::CNAME | RecordType::ANY | RecordType::RRSIG | RecordType::NSEC
        );
        if !cname.is_empty() && !beside_cname {
            let target = match &cname[0].data {
                RData::CNAME(target) => Some(LowerName::new(&target.0)),
                _ => None,
            };
            self.response.answers.extend(rename(cname));
            return match target {
                Some(target)
                    if chain < MAX_CNAME_CHAIN
                        && self.zone.data.origin_key.zone_of(&target)
                        && !self.seen(&target) =>
                {
                    self.resolve(&target, qtype, chain + 1)
                }
                // Out of zone or a loop: the resolver follows it from here.
                _ => {}
            };
        }

        // RFC 8482 §4.2: ANY gets one RRset, not all. Like Knot, the one with the lowest type
        // number, so a service name answers ANY with its A records.
        let qtype = if qtype == RecordType::ANY {
            let static_types = node.iter().flat_map(|n| &n.rrsets).map(|s| s.record_type());
            let service_types = service.into_iter().flat_map(|s| {
                [
                    (!s.a.is_empty()).then_some(RecordType::A),
                    (!s.aaaa.is_empty()).then_some(RecordType::AAAA),
                ]
                .into_iter()
                .flatten()
            });
            match static_types
                .chain(service_types)
                .min_by_key(|t| u16::from(*t))
            {
                Some(lowest) => lowest,
                None => return self.no_data(),
            }
        } else {
            qtype
        };
        let found: Vec<&'s Record> = match (qtype, service) {
            (RecordType::A, Some(service)) => service.answer(true).iter().collect(),
            (RecordType::AAAA, Some(service)) => service.answer(false).iter().collect(),
            _ => static_set(qtype),
        };
        if found.is_empty() {
            return self.no_data();
        }
        self.add_additional(&found);
        self.response.answers.extend(rename(found));
    }

    fn seen(&self, name: &LowerName) -> bool {
        self.response
            .answers
            .iter()
            .any(|r| LowerName::new(&r.name) == *name)
    }

    /// A referral to the servers of the child zone at `cut` (RFC 1034 §4.3.2 step 3b).
    fn refer(&mut self, cut: &LowerName) {
        // Not our data: AA stays only on the in-zone CNAMEs that led here, if any.
        if self.response.answers.is_empty() {
            self.response.authoritative = false;
        }
        let ns: Vec<&'s Record> = self
            .zone
            .data
            .nodes
            .get(cut)
            .and_then(|n| n.rrset(RecordType::NS))
            .map(|set| set.records_without_rrsigs().collect())
            .unwrap_or_default();
        self.add_additional(&ns);
        self.response
            .authority
            .extend(ns.into_iter().map(Cow::Borrowed));
    }

    /// Additional-section processing (RFC 1034 §3.6.2, RFC 2782): the addresses this zone
    /// holds for the targets of NS, MX and SRV records, each RRset once.
    fn add_additional(&mut self, records: &[&'s Record]) {
        for record in records {
            let Some(target) = additional_target(&self.zone.data.origin_key, record) else {
                continue;
            };
            for rtype in [RecordType::A, RecordType::AAAA] {
                let already = self
                    .response
                    .additional
                    .iter()
                    .any(|r| r.record_type() == rtype && LowerName::new(&r.name) == target);
                if !already {
                    let addresses = self.addresses_at(&target, rtype);
                    self.response.additional.extend(addresses);
                }
            }
        }
    }

    /// The A or AAAA records this zone answers at `name`: a service's selection, static ones,
    /// or, where the name does not exist, what a wildcard synthesises for it (RFC 4592 §3.3.1;
    /// Knot adds those too).
    fn addresses_at(&self, name: &LowerName, rtype: RecordType) -> Vec<Cow<'s, Record>> {
        let zone = self.zone;
        if let Some(service) = zone.services.get(name) {
            let records = service.answer(rtype == RecordType::A);
            return records.iter().map(Cow::Borrowed).collect();
        }
        let of = |node: &'s Node| -> Vec<&'s Record> {
            node.rrset(rtype)
                .map(|set| set.records_without_rrsigs().collect())
                .unwrap_or_default()
        };
        if let Some(node) = zone.data.nodes.get(name) {
            return of(node).into_iter().map(Cow::Borrowed).collect();
        }
        if zone.data.recordless.contains(name) {
            return Vec::new();
        }
        let Some((owner, wildcard)) = self.wildcard_for(name) else {
            return Vec::new();
        };
        if zone.data.cuts.contains(owner) {
            return Vec::new(); // Delegated: the child's to answer.
        }
        of(wildcard)
            .into_iter()
            .map(|record| {
                let mut record = record.clone();
                record.name = Name::from(name);
                Cow::Owned(record)
            })
            .collect()
    }

    /// The name exists but has no records of the type: NOERROR with the SOA (RFC 2308 §2.2).
    fn no_data(&mut self) {
        self.response
            .authority
            .push(Cow::Borrowed(&self.zone.negative_soa));
    }

    /// The name does not exist: NXDOMAIN with the SOA (RFC 2308 §2.1).
    fn name_error(&mut self) {
        self.response.rcode = ResponseCode::NXDomain;
        self.response
            .authority
            .push(Cow::Borrowed(&self.zone.negative_soa));
    }
}

/// The target of a DNAME record, from its wire form (hickory keeps DNAME data opaque).
fn dname_target(record: &Record) -> Option<Name> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
    let bytes = record.data.to_bytes().ok()?;
    Name::read(&mut BinDecoder::new(&bytes)).ok()
}

#[cfg(test)]
pub(crate) mod tests;
