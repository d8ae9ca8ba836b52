//! Validation: from the raw config to the plan's parts, every problem reported as
//! `file:line: problem` with what to do. One function per table of the config; it will split
//! by table if it grows much further.
//!
//! Pure apart from reading the zone files and token file it names: it changes nothing it was
//! given, and what follows from a valid config (service names added to their zones, the
//! zones' wire indexes) is done after it, by [`super::load`].

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, RecordType};
use ipnet::IpNet;
use toml::Spanned;

use super::schema::{
    RawCheck, RawConfig, RawKey, RawKind, RawMember, RawServer, RawService, RawStatus, RawWebhook,
    RawZone, is_default,
};
use super::{
    CheckKind, CheckPlan, DnsCheck, HttpCheck, MAX_DURATION, MIN_INTERVAL, MIN_TIMEOUT, MemberPlan,
    Policy, ScriptCheck, ServerPlan, ServicePlan, WebhookPlan, WhenAllDown,
};
use crate::dns::acl::TransferPolicy;
use crate::dns::tsig::{self, Keys, TsigKey};
use crate::error::{LoadError, line_of};
use crate::zone::{self, StaticZone};

/// `max_answers` when not given: as Route 53's multivalue answers.
const DEFAULT_MAX_ANSWERS: usize = 8;
/// Most addresses in one answer (`max_answers`, `fallback`): far more than fits a UDP
/// response without truncation, so never a limit an operator meets by accident.
const MAX_ANSWERS_LIMIT: u32 = 64;
/// Largest member weight (Route 53 allows 0..=255; HAProxy 0..=256).
const MAX_WEIGHT: u32 = 10_000;

/// The span of an optional key that is known to be set (the default span otherwise).
fn span_of<T>(value: &Option<Spanned<T>>) -> Range<usize> {
    value.as_ref().map_or(0..0, Spanned::span)
}

/// A valid config, before its service names are added to their zones.
pub(super) struct Validated {
    pub(super) server: ServerPlan,
    pub(super) zones: Vec<StaticZone>,
    /// Who may transfer each zone (`transfers[z]` for `zones[z]`).
    pub(super) transfers: Vec<TransferPolicy>,
    pub(super) keys: Keys,
    pub(super) services: Vec<ServicePlan>,
    pub(super) webhooks: Vec<WebhookPlan>,
}

/// Validates a raw config; knows the text so each error can name its line.
pub(super) struct Validator<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Validator<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> LoadError {
        LoadError::at(self.path, line_of(self.text, span.start), message)
    }

    /// Every part of the config, validated.
    pub(super) fn validate(&self, raw: RawConfig) -> Result<Validated, LoadError> {
        let server = self.server(raw.server)?;
        let mut keys = Vec::new();
        for raw_key in raw.key {
            let key = self.key(raw_key, &keys)?;
            keys.push(key);
        }
        let mut zones = Vec::new();
        let mut transfers = Vec::new();
        for raw_zone in raw.zone {
            transfers.push(self.transfer(&raw_zone, &keys)?);
            zones.push(self.zone(raw_zone, &zones)?);
        }
        let mut services: Vec<ServicePlan> = Vec::with_capacity(raw.service.len());
        // Names seen so far: a set, so 100,000 services validate in linear time.
        let mut names: HashSet<LowerName> = HashSet::with_capacity(raw.service.len());
        for raw_service in raw.service {
            let service = self.service(raw_service, &zones, &mut names)?;
            services.push(service);
        }
        let webhooks = raw
            .notify
            .webhook
            .into_iter()
            .map(|hook| self.webhook(hook))
            .collect::<Result<_, _>>()?;
        Ok(Validated {
            server,
            zones,
            transfers,
            keys: Keys::new(keys),
            services,
            webhooks,
        })
    }

    fn webhook(&self, raw: RawWebhook) -> Result<WebhookPlan, LoadError> {
        let url = raw.url.get_ref();
        let valid = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !valid {
            return Err(self.error(
                raw.url.span(),
                format!(
                    "invalid webhook url {url:?}; write e.g. \"https://alerts.example.com/hook\""
                ),
            ));
        }
        let timeout = self.bounded(&raw.timeout, "webhook timeout", MIN_TIMEOUT..=MAX_DURATION)?;
        Ok(WebhookPlan {
            url: url.clone(),
            timeout,
            retries: raw.retries,
        })
    }

    fn server(&self, raw: RawServer) -> Result<ServerPlan, LoadError> {
        if raw.listen.get_ref().is_empty() {
            return Err(self.error(
                raw.listen.span(),
                "`listen` is empty; give at least one address, e.g. [\"127.0.0.1:5300\"]",
            ));
        }
        let mut listen = Vec::new();
        for addr in raw.listen.into_inner() {
            let parsed: SocketAddr = addr.get_ref().parse().map_err(|_| {
                self.error(addr.span(), format!("invalid listen address {:?}; write IP:PORT, e.g. \"127.0.0.1:5300\" or \"[::1]:5300\"", addr.get_ref()))
            })?;
            if listen.contains(&parsed) {
                return Err(self.error(
                    addr.span(),
                    format!("listen address {parsed} is given twice"),
                ));
            }
            listen.push(parsed);
        }
        let txt = |value: Option<Spanned<String>>, default: String, key: &str| {
            let Some(value) = value else {
                return Ok(default);
            };
            if value.get_ref().len() > 255 {
                return Err(self.error(
                    value.span(),
                    format!("{key} is longer than the 255 bytes a TXT string holds"),
                ));
            }
            Ok(value.into_inner())
        };
        let identity = txt(raw.identity, String::new(), "identity")?;
        let version = txt(
            raw.version,
            format!("failover-dns {}", env!("CARGO_PKG_VERSION")),
            "version",
        )?;
        let http = match &raw.http {
            None => None,
            Some(addr) => Some(addr.get_ref().parse::<SocketAddr>().map_err(|_| {
                self.error(
                    addr.span(),
                    format!(
                        "invalid http address {:?}; write IP:PORT, e.g. \"127.0.0.1:8053\"",
                        addr.get_ref()
                    ),
                )
            })?),
        };
        let http_token = match (raw.http_token, raw.http_token_file) {
            (Some(_), Some(file)) => {
                return Err(self.error(file.span(), "set http_token or http_token_file, not both"));
            }
            (Some(token), None) => Some(token),
            (None, Some(file)) => {
                let path = self.relative_path(file.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        file.span(),
                        format!("cannot read http_token_file {}: {e}", path.display()),
                    )
                })?;
                Some(Spanned::new(file.span(), text.trim().to_string()))
            }
            (None, None) => None,
        };
        if let Some(token) = &http_token
            && token.get_ref().is_empty()
        {
            return Err(self.error(token.span(), "the http token is empty"));
        }
        if let (Some(addr), Some(raw_addr), None) = (http, &raw.http, &http_token)
            && !addr.ip().is_loopback()
        {
            return Err(self.error(
                raw_addr.span(),
                format!("http = {addr} is not a loopback address, so set http_token or http_token_file: without a token anyone who reaches it could drain members or reload the config"),
            ));
        }
        let state_file = self.relative_path(
            raw.state_file
                .as_deref()
                .unwrap_or("failover-dns.state.json"),
        );
        let tcp_idle_timeout = self.bounded(
            &raw.tcp_idle_timeout,
            "tcp_idle_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let tcp_io_timeout = self.bounded(
            &raw.tcp_io_timeout,
            "tcp_io_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let http_timeout = self.bounded(
            &raw.http_timeout,
            "http_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let count = |raw: &Spanned<u32>, key: &str, range: RangeInclusive<u32>| {
            if range.contains(raw.get_ref()) {
                return Ok(*raw.get_ref());
            }
            Err(self.error(
                raw.span(),
                format!(
                    "{key} {} is out of range {}..={}",
                    raw.get_ref(),
                    range.start(),
                    range.end()
                ),
            ))
        };
        let tcp_max_clients = count(&raw.tcp_max_clients, "tcp_max_clients", 1..=1_000_000)?;
        let http_max_clients = count(&raw.http_max_clients, "http_max_clients", 1..=10_000)?;
        let rate_limit = count(&raw.rate_limit, "rate_limit", 0..=10_000_000)?;
        let rate_limit_slip = count(&raw.rate_limit_slip, "rate_limit_slip", 0..=10)?;
        let transfers_out = count(&raw.transfers_out, "transfers_out", 1..=1000)?;
        let max_scripts = count(&raw.max_scripts, "max_scripts", 1..=1000)?;
        let mut http_hosts = Vec::new();
        for host in raw.http_hosts {
            let name = host.get_ref().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !valid {
                return Err(self.error(
                    host.span(),
                    format!(
                        "http_hosts entry {:?} is not a host name; write the name clients use, e.g. \"fdns.example.net\"",
                        host.get_ref()
                    ),
                ));
            }
            http_hosts.push(name);
        }
        Ok(ServerPlan {
            listen,
            tcp_idle_timeout,
            tcp_io_timeout,
            tcp_max_clients: tcp_max_clients as usize,
            http_max_clients: http_max_clients as usize,
            http_timeout,
            http_hosts,
            rate_limit,
            rate_limit_slip,
            transfers_out: transfers_out as usize,
            max_scripts: max_scripts as usize,
            identity,
            version,
            http,
            http_token: http_token.map(Spanned::into_inner),
            state_file,
        })
    }

    /// A `[[key]]`: a name, an HMAC-SHA2 algorithm, and a base64 secret given inline or in a
    /// file (relative to the config), not both.
    fn key(&self, raw: RawKey, earlier: &[TsigKey]) -> Result<TsigKey, LoadError> {
        let name = self.fqdn(&raw.name, "key name")?;
        if earlier
            .iter()
            .any(|k| LowerName::new(&k.name) == LowerName::new(&name))
        {
            return Err(self.error(raw.name.span(), format!("key {name} is defined twice")));
        }
        let algorithm = tsig::algorithm_named(raw.algorithm.get_ref()).ok_or_else(|| {
            self.error(
                raw.algorithm.span(),
                format!(
                    "unknown TSIG algorithm {:?}; use hmac-sha256 (the default), hmac-sha384 or hmac-sha512",
                    raw.algorithm.get_ref()
                ),
            )
        })?;
        let (text, span) = match (&raw.secret, &raw.secret_file) {
            (Some(secret), None) => (secret.get_ref().clone(), secret.span()),
            (None, Some(file)) => {
                let path = self.relative_path(file.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        file.span(),
                        format!("cannot read secret_file {}: {e}", path.display()),
                    )
                })?;
                (text, file.span())
            }
            (Some(secret), Some(_)) => {
                return Err(self.error(secret.span(), "give `secret` or `secret_file`, not both"));
            }
            (None, None) => {
                return Err(self.error(
                    raw.name.span(),
                    format!("key {name} has no secret; give `secret` (base64) or `secret_file`"),
                ));
            }
        };
        // As BIND and Knot write it: base64, whitespace allowed (a key file's line break).
        let compact: String = text.split_whitespace().collect();
        let secret = data_encoding::BASE64
            .decode(compact.as_bytes())
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.error(
                    span,
                    format!("the secret of key {name} is not base64 (generate one with `tsig-keygen` or `keymgr -t`)"),
                )
            })?;
        Ok(TsigKey::new(name, algorithm, secret))
    }

    /// A zone's `allow_transfer`, `transfer_key` and `notify`.
    fn transfer(&self, raw: &RawZone, keys: &[TsigKey]) -> Result<TransferPolicy, LoadError> {
        let mut allow = Vec::new();
        for entry in &raw.allow_transfer {
            let text = entry.get_ref();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    self.error(
                        entry.span(),
                        format!("allow_transfer entry {text:?} is not an address or prefix; write e.g. \"192.0.2.53\" or \"2001:db8::/64\""),
                    )
                })?;
            allow.push(net);
        }
        let key = match &raw.transfer_key {
            None => None,
            Some(name) => {
                let wanted = LowerName::new(&self.fqdn(name, "transfer_key")?);
                if !keys.iter().any(|k| LowerName::new(&k.name) == wanted) {
                    return Err(self.error(
                        name.span(),
                        format!(
                            "transfer_key {:?} is not defined; add a [[key]] with that name",
                            name.get_ref()
                        ),
                    ));
                }
                Some(wanted)
            }
        };
        let mut notify = Vec::new();
        for target in &raw.notify {
            let text = target.get_ref();
            let addr = text
                .parse::<SocketAddr>()
                .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    self.error(
                        target.span(),
                        format!("notify target {text:?} is not an address; write IP or IP:PORT, e.g. \"192.0.2.53\" or \"[2001:db8::53]:5353\""),
                    )
                })?;
            notify.push(addr);
        }
        Ok(TransferPolicy { allow, key, notify })
    }

    fn zone(&self, raw: RawZone, earlier: &[StaticZone]) -> Result<StaticZone, LoadError> {
        let origin = self.fqdn(&raw.origin, "zone origin")?;
        if earlier
            .iter()
            .any(|z| z.origin_key == LowerName::new(&origin))
        {
            return Err(self.error(
                raw.origin.span(),
                format!("zone {origin} is configured twice"),
            ));
        }
        let file = self.relative_path(raw.file.get_ref());
        let problem = match std::fs::metadata(&file) {
            Err(_) => Some("does not exist (relative paths are relative to the config file)"),
            Ok(metadata) if !metadata.is_file() => Some(
                "is not a regular file (a device, FIFO or directory); zone files must be regular files",
            ),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            return Err(self.error(
                raw.file.span(),
                format!("zone file {} {problem}", file.display()),
            ));
        }
        zone::load(&file, &origin)
    }

    fn service(
        &self,
        raw: RawService,
        zones: &[StaticZone],
        names: &mut HashSet<LowerName>,
    ) -> Result<ServicePlan, LoadError> {
        let name = self.fqdn(&raw.name, "service name")?;
        let key = LowerName::new(&name);
        let span = raw.name.span();
        if !names.insert(key.clone()) {
            return Err(self.error(span, format!("service {name} is configured twice")));
        }
        let zone_index = zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin_key.zone_of(&key))
            .max_by_key(|(_, z)| z.origin_key.num_labels())
            .map(|(i, _)| i)
            .ok_or_else(|| self.error(span.clone(), format!("service {name} is not inside any configured zone; add a [[zone]] for its parent or fix the name")))?;
        let zone = &zones[zone_index];
        if let Some(cut) = zone.enclosing_cut(&key) {
            return Err(self.error(span, format!("service {name} is at or below the delegation {cut}, which this server does not answer for")));
        }
        if let Some(node) = zone.nodes.get(&key) {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                if node.rrset(rtype).is_some() {
                    return Err(self.error(span, format!("service {name} clashes with the static {rtype} records for it in the zone file; remove them from the zone or rename the service")));
                }
            }
        }
        if !(1..=i32::MAX as u32).contains(raw.ttl.get_ref()) {
            return Err(self.error(
                raw.ttl.span(),
                format!("ttl {} is out of range 1..=2147483647", raw.ttl.get_ref()),
            ));
        }

        let check_span = raw.check.span();
        let check = self.check(raw.check.into_inner(), check_span)?;
        let policy = raw.policy;
        let (members, tiered) = match (raw.members, raw.tiers) {
            (Some(members), None) => {
                let span = members.span();
                let list: Vec<Vec<Spanned<RawMember>>> =
                    members.into_inner().into_iter().map(|m| vec![m]).collect();
                (self.members(&name, list, span, &check)?, false)
            }
            (None, Some(tiers)) => {
                if policy != Policy::Failover {
                    return Err(self.error(tiers.span(), format!("tiers apply only to policy = \"failover\" (this service's policy is \"{}\"); use members", policy.as_str())));
                }
                let span = tiers.span();
                let list: Vec<Vec<Spanned<RawMember>>> = tiers
                    .into_inner()
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect();
                if let Some(empty) = list.iter().position(Vec::is_empty) {
                    return Err(self.error(span, format!("tier {} of service {name} is empty; every tier lists at least one member", empty + 1)));
                }
                (self.members(&name, list, span, &check)?, true)
            }
            (Some(members), Some(_)) => {
                return Err(self.error(
                    members.span(),
                    format!(
                        "service {name} has both members and tiers; list its members in one of them"
                    ),
                ));
            }
            (None, None) => {
                return Err(self.error(span, format!("service {name} has no members; list the primary first, then standbys (members = [...]), or groups of them (tiers = [[...], [...]])")));
            }
        };

        let max_answers = match &raw.max_answers {
            None => DEFAULT_MAX_ANSWERS,
            Some(_) if policy == Policy::Weighted => {
                return Err(self.error(span_of(&raw.max_answers), "max_answers does not apply to policy = \"weighted\", which answers one member per response"));
            }
            Some(_) if policy == Policy::Failover && !tiered => {
                return Err(self.error(span_of(&raw.max_answers), "max_answers applies to policy = \"all\" and to tiers; a failover service with plain members answers one member"));
            }
            Some(n) if (1..=MAX_ANSWERS_LIMIT).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                return Err(self.error(
                    n.span(),
                    format!("max_answers must be 1..={MAX_ANSWERS_LIMIT}"),
                ));
            }
        };
        let when_all_down = match &raw.when_all_down {
            None => WhenAllDown::AnswerAll,
            Some(mode) => match mode.get_ref().as_str() {
                "answer-all" => WhenAllDown::AnswerAll,
                "fallback" => WhenAllDown::Fallback,
                "answer-none" => WhenAllDown::AnswerNone,
                other => {
                    return Err(self.error(mode.span(), format!("when_all_down {other:?} is not \"answer-all\", \"fallback\" or \"answer-none\"")));
                }
            },
        };
        let mut fallback = Vec::new();
        match (&raw.fallback, when_all_down) {
            (Some(list), WhenAllDown::Fallback) => {
                for entry in list.get_ref() {
                    let addr: IpAddr = entry.get_ref().parse().map_err(|_| {
                        self.error(
                            entry.span(),
                            format!("fallback {:?} is not an IP address", entry.get_ref()),
                        )
                    })?;
                    if fallback.contains(&addr) {
                        return Err(
                            self.error(entry.span(), format!("fallback {addr} is listed twice"))
                        );
                    }
                    fallback.push(addr);
                }
                if fallback.is_empty() {
                    return Err(self.error(
                        list.span(),
                        "fallback is empty; list the addresses to answer when every member is down",
                    ));
                }
                if fallback.len() > MAX_ANSWERS_LIMIT as usize {
                    return Err(self.error(
                        list.span(),
                        format!("fallback lists more than {MAX_ANSWERS_LIMIT} addresses"),
                    ));
                }
            }
            (Some(list), _) => {
                return Err(self.error(
                    list.span(),
                    "fallback applies only with when_all_down = \"fallback\"",
                ));
            }
            (None, WhenAllDown::Fallback) => {
                return Err(self.error(span_of(&raw.when_all_down), "when_all_down = \"fallback\" needs fallback = [\"...\"], the addresses to answer when every member is down"));
            }
            (None, _) => {}
        }
        let failback_delay = match &raw.failback_delay {
            None => Duration::ZERO,
            Some(delay) if policy != Policy::Failover => {
                return Err(self.error(
                    delay.span(),
                    "failback_delay applies only to policy = \"failover\"",
                ));
            }
            Some(delay) if !raw.failback => {
                return Err(self.error(delay.span(), "failback_delay applies only with failback = true (with failback = false answers never move back)"));
            }
            Some(delay) => self.bounded(delay, "failback_delay", Duration::ZERO..=MAX_DURATION)?,
        };
        Ok(ServicePlan {
            name,
            zone: zone_index,
            ttl: raw.ttl.into_inner(),
            policy,
            failback: raw.failback,
            failback_delay,
            max_answers,
            when_all_down,
            fallback,
            members,
            check,
        })
    }

    /// The members of `tiers` (each a list; plain members are tiers of one), validated.
    fn members(
        &self,
        service: &Name,
        tiers: Vec<Vec<Spanned<RawMember>>>,
        span: Range<usize>,
        check: &CheckPlan,
    ) -> Result<Vec<MemberPlan>, LoadError> {
        let mut members: Vec<MemberPlan> = Vec::new();
        let mut seen = HashSet::new();
        for (tier, list) in tiers.into_iter().enumerate() {
            for member in list {
                let member_span = member.span();
                let (address, weight, check_address, port) = match member.into_inner() {
                    RawMember::Plain(address) => (
                        Spanned::new(member_span.clone(), address.into_inner()),
                        None,
                        None,
                        None,
                    ),
                    RawMember::Table(table) => {
                        (table.address, table.weight, table.check_address, table.port)
                    }
                };
                let ip = |text: &Spanned<String>, what: &str| -> Result<IpAddr, LoadError> {
                    text.get_ref().parse().map_err(|_| {
                        self.error(text.span(), format!("{what} {:?} is not an IP address; members are IPv4 or IPv6 addresses, e.g. \"192.0.2.10\"", text.get_ref()))
                    })
                };
                let addr = ip(&address, "member")?;
                if !seen.insert(addr) {
                    return Err(
                        self.error(address.span(), format!("member {addr} is listed twice"))
                    );
                }
                let weight = match weight {
                    None => 1,
                    Some(w) if *w.get_ref() <= MAX_WEIGHT => w.into_inner(),
                    Some(w) => {
                        return Err(
                            self.error(w.span(), format!("weight must be 0..={MAX_WEIGHT}"))
                        );
                    }
                };
                let check_ip = match &check_address {
                    None => addr,
                    Some(text) => ip(text, "check_address")?,
                };
                let port = match port {
                    None => check.port,
                    Some(p) if *p.get_ref() == 0 => {
                        return Err(self.error(p.span(), "port must be 1..=65535"));
                    }
                    Some(p) => p.into_inner(),
                };
                members.push(MemberPlan {
                    address: addr,
                    weight,
                    tier: u32::try_from(tier).unwrap_or(u32::MAX),
                    check_target: SocketAddr::new(check_ip, port),
                });
            }
        }
        if members.is_empty() {
            return Err(self.error(
                span,
                format!("service {service} has no members; list the primary first, then standbys"),
            ));
        }
        Ok(members)
    }

    fn check(&self, raw: RawCheck, table: Range<usize>) -> Result<CheckPlan, LoadError> {
        let kind_name = match raw.kind {
            RawKind::Tcp => "tcp",
            RawKind::Http => "http",
            RawKind::Script => "script",
            RawKind::Dns => "dns",
        };
        // Each kind's own keys: any other kind's is a mistake worth naming.
        let span = |value: Option<Range<usize>>, key: &'static str, kind: &'static str| {
            value.map(|span| (key, span, kind))
        };
        let keys = [
            span(raw.path.as_ref().map(Spanned::span), "path", "http"),
            span(raw.host.as_ref().map(Spanned::span), "host", "http"),
            span(raw.scheme.as_ref().map(Spanned::span), "scheme", "http"),
            span(
                raw.expect_status.as_ref().map(Spanned::span),
                "expect_status",
                "http",
            ),
            span(
                raw.tls_verify.as_ref().map(Spanned::span),
                "tls_verify",
                "http",
            ),
            span(
                raw.expect_body.as_ref().map(Spanned::span),
                "expect_body",
                "http",
            ),
            span(raw.send.as_ref().map(Spanned::span), "send", "tcp"),
            span(raw.expect.as_ref().map(Spanned::span), "expect", "tcp"),
            span(raw.command.as_ref().map(Spanned::span), "command", "script"),
            span(raw.query.as_ref().map(Spanned::span), "query", "dns"),
            span(raw.qtype.as_ref().map(Spanned::span), "type", "dns"),
            span(
                raw.expect_rcode.as_ref().map(Spanned::span),
                "expect_rcode",
                "dns",
            ),
        ];
        if let Some((key, span, kind)) =
            keys.into_iter().flatten().find(|(_, _, k)| *k != kind_name)
        {
            return Err(self.error(
                span,
                format!("`{key}` applies only to kind = \"{kind}\" checks"),
            ));
        }
        if raw.hold && !matches!(raw.kind, RawKind::Tcp | RawKind::Http) {
            return Err(self.error(
                table,
                format!(
                    "hold = true applies to tcp and http checks, not to kind = \"{kind_name}\""
                ),
            ));
        }
        let port = match (&raw.port, &raw.kind) {
            (Some(port), _) if *port.get_ref() == 0 => {
                return Err(self.error(port.span(), "check port must be 1..=65535"));
            }
            (Some(port), _) => *port.get_ref(),
            (None, RawKind::Dns) => 53,
            // A script that uses no `{port}` needs none.
            (None, RawKind::Script) => 0,
            (None, _) => {
                return Err(self.error(
                    table,
                    format!("a kind = \"{kind_name}\" check needs a port"),
                ));
            }
        };
        let kind = match raw.kind {
            RawKind::Tcp => match (&raw.send, &raw.expect) {
                (None, None) => CheckKind::Tcp,
                (send, Some(expect)) if !expect.get_ref().is_empty() => CheckKind::TcpExpect {
                    send: send.as_ref().map(|s| s.get_ref().clone()),
                    expect: expect.get_ref().clone(),
                },
                (Some(send), None) => {
                    return Err(self.error(
                        send.span(),
                        "send needs expect: the string the reply must contain",
                    ));
                }
                (_, Some(expect)) => {
                    return Err(self.error(expect.span(), "expect must not be empty"));
                }
            },
            RawKind::Http => CheckKind::Http(self.http_check(&raw)?),
            RawKind::Script => {
                let Some(command) = &raw.command else {
                    return Err(self.error(table, "a kind = \"script\" check needs command = [\"/path/to/program\", \"{address}\", ...]"));
                };
                let Some(program) = command.get_ref().first() else {
                    return Err(self.error(
                        command.span(),
                        "command is empty; give the program first, then its arguments",
                    ));
                };
                if program.is_empty() {
                    return Err(self.error(command.span(), "command's program is empty"));
                }
                if port == 0 && command.get_ref().iter().any(|a| a.contains("{port}")) {
                    return Err(self.error(
                        command.span(),
                        "command uses {port} but the check has no port",
                    ));
                }
                CheckKind::Script(ScriptCheck {
                    command: command.get_ref().clone(),
                })
            }
            RawKind::Dns => CheckKind::Dns(self.dns_check(&raw, table)?),
        };
        let interval =
            self.bounded(&raw.interval, "check interval", MIN_INTERVAL..=MAX_DURATION)?;
        let timeout = self.bounded(&raw.timeout, "check timeout", MIN_TIMEOUT..=MAX_DURATION)?;
        if timeout > interval {
            // A defaulted timeout has no line of its own: blame the interval that undercuts it.
            let error = if is_default(&raw.timeout) {
                self.error(
                    raw.interval.span(),
                    format!(
                        "timeout defaults to {}, which is above interval {}; set timeout to at most the interval",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                )
            } else {
                self.error(
                    raw.timeout.span(),
                    format!(
                        "check timeout must be at most the interval ({})",
                        humantime::format_duration(interval)
                    ),
                )
            };
            return Err(error);
        }
        let paced = |value: &Spanned<Duration>, key: &str| {
            if is_default(value) {
                Ok(interval)
            } else {
                self.bounded(value, key, MIN_INTERVAL..=MAX_DURATION)
            }
        };
        let fast_interval = paced(&raw.fast_interval, "fast_interval")?;
        let down_interval = paced(&raw.down_interval, "down_interval")?;
        for threshold in [&raw.rise, &raw.fall] {
            if !(1..=1000).contains(threshold.get_ref()) {
                return Err(self.error(threshold.span(), "rise and fall must be 1..=1000"));
            }
        }
        Ok(CheckPlan {
            kind,
            port,
            interval,
            timeout,
            fast_interval,
            down_interval,
            hold: raw.hold,
            rise: raw.rise.into_inner(),
            fall: raw.fall.into_inner(),
        })
    }

    fn dns_check(&self, raw: &RawCheck, table: Range<usize>) -> Result<DnsCheck, LoadError> {
        let Some(query) = &raw.query else {
            return Err(self.error(
                table,
                "a kind = \"dns\" check needs query = \"name.\", the name to ask",
            ));
        };
        let name = self.fqdn(query, "query")?;
        let qtype = match &raw.qtype {
            None => hickory_proto::rr::RecordType::SOA,
            Some(text) => text.get_ref().to_ascii_uppercase().parse().map_err(|_| {
                self.error(
                    text.span(),
                    format!("type {:?} is not a DNS record type", text.get_ref()),
                )
            })?,
        };
        let expect_rcode = match &raw.expect_rcode {
            None => hickory_proto::op::ResponseCode::NoError,
            Some(text) => match text.get_ref().to_ascii_uppercase().as_str() {
                "NOERROR" => hickory_proto::op::ResponseCode::NoError,
                "NXDOMAIN" => hickory_proto::op::ResponseCode::NXDomain,
                "SERVFAIL" => hickory_proto::op::ResponseCode::ServFail,
                "REFUSED" => hickory_proto::op::ResponseCode::Refused,
                "FORMERR" => hickory_proto::op::ResponseCode::FormErr,
                "NOTIMP" => hickory_proto::op::ResponseCode::NotImp,
                _ => {
                    return Err(self.error(text.span(), format!("expect_rcode {:?} is not one of NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP", text.get_ref())));
                }
            },
        };
        Ok(DnsCheck {
            query: name,
            qtype,
            expect_rcode,
        })
    }

    fn http_check(&self, raw: &RawCheck) -> Result<HttpCheck, LoadError> {
        let scheme = match &raw.scheme {
            None => "http".to_string(),
            Some(s) if s.get_ref() == "http" || s.get_ref() == "https" => s.get_ref().clone(),
            Some(s) => {
                return Err(self.error(
                    s.span(),
                    format!("scheme {:?} is not \"http\" or \"https\"", s.get_ref()),
                ));
            }
        };
        let path = match &raw.path {
            None => "/".to_string(),
            Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
            Some(p) => {
                return Err(self.error(
                    p.span(),
                    format!("path {:?} must start with '/'", p.get_ref()),
                ));
            }
        };
        let host = match &raw.host {
            None => None,
            Some(h) if !h.get_ref().is_empty() && !h.get_ref().contains(['/', ' ']) => {
                Some(h.get_ref().clone())
            }
            Some(h) => {
                return Err(self.error(
                    h.span(),
                    format!("host {:?} is not a host name", h.get_ref()),
                ));
            }
        };
        let expect_status = match &raw.expect_status {
            None => 200..=399,
            Some(s) => self.status_range(s)?,
        };
        Ok(HttpCheck {
            scheme,
            path,
            host,
            expect_status,
            tls_verify: raw.tls_verify.as_ref().is_none_or(|v| *v.get_ref()),
            expect_body: match &raw.expect_body {
                Some(body) if body.get_ref().is_empty() => {
                    return Err(self.error(body.span(), "expect_body must not be empty"));
                }
                Some(body) if body.get_ref().len() > 4096 => {
                    return Err(self.error(body.span(), "expect_body is longer than 4096 bytes"));
                }
                body => body.as_ref().map(|b| b.get_ref().clone()),
            },
        })
    }

    fn status_range(&self, raw: &Spanned<RawStatus>) -> Result<RangeInclusive<u16>, LoadError> {
        let bad = || {
            self.error(raw.span(), "expect_status must be a status like 200 or a range like \"200-299\" within 100..=599")
        };
        let (low, high) = match raw.get_ref() {
            RawStatus::One(code) => (*code, *code),
            RawStatus::Range(text) => {
                let (low, high) = text.split_once('-').unwrap_or((text, text));
                let low = low.trim().parse().map_err(|_| bad())?;
                let high = high.trim().parse().map_err(|_| bad())?;
                (low, high)
            }
        };
        if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
            return Err(bad());
        }
        Ok(low..=high)
    }

    /// `raw`'s duration, if it lies in `range`; else an error naming `what` and the range.
    fn bounded(
        &self,
        raw: &Spanned<Duration>,
        what: &str,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, LoadError> {
        let value = *raw.get_ref();
        if range.contains(&value) {
            return Ok(value);
        }
        Err(self.error(
            raw.span(),
            format!(
                "{what} {} is out of range {}..={}",
                humantime::format_duration(value),
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end())
            ),
        ))
    }

    fn fqdn(&self, raw: &Spanned<String>, what: &str) -> Result<Name, LoadError> {
        let mut name = crate::zone::name_from_text(raw.get_ref()).map_err(|e| {
            self.error(
                raw.span(),
                format!("{what} {:?} is not a valid domain name: {e}", raw.get_ref()),
            )
        })?;
        if name.is_root() || raw.get_ref().is_empty() {
            return Err(self.error(raw.span(), format!("{what} must not be the root")));
        }
        name.set_fqdn(true);
        Ok(name)
    }

    fn relative_path(&self, file: &str) -> PathBuf {
        let file = Path::new(file);
        if file.is_absolute() {
            return file.to_path_buf();
        }
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }
}
