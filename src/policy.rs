//! Policies: from member states to the addresses a service answers.
//!
//! Pure functions, applied per address family: `A` answers come from the IPv4 members and
//! `AAAA` answers from the IPv6 members, each family with its own primary and standbys. Time
//! comes in as an argument (`failback_delay`), so every rule here is a unit test away.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Policy, WhenAllDown};
use crate::health::state::State;

/// What an operator says about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminOverride {
    /// Never answer it (unless every member of its family is drained).
    Drain,
    /// Answer it as healthy whatever its checks say.
    ForceUp,
}

impl fmt::Display for AdminOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminOverride::Drain => "drain",
            AdminOverride::ForceUp => "force-up",
        })
    }
}

/// What one address family of a service answers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The addresses answered, in member order (`weighted`: the addresses one is drawn from).
    pub addresses: Vec<IpAddr>,
    /// `weighted`: each address's weight, beside `addresses`; empty for the other policies.
    pub weights: Vec<u32>,
    /// Which `when_all_down` mode is in force, when no member of the family is usable.
    pub all_down: Option<WhenAllDown>,
    /// A failback held back by `failback_delay`: the addresses it will move to, and when.
    pub pending_failback: Option<(Vec<IpAddr>, Instant)>,
}

/// Two selections are the same answer when they answer the same: a pending failback is not
/// an answer (it only says when to look again).
impl PartialEq for Selection {
    fn eq(&self, other: &Self) -> bool {
        self.addresses == other.addresses
            && self.weights == other.weights
            && self.all_down == other.all_down
    }
}

impl Eq for Selection {}

impl Selection {
    /// True when every member is down and all of them are answered anyway (`answer-all`).
    pub fn failing_open(&self) -> bool {
        self.all_down == Some(WhenAllDown::AnswerAll)
    }
}

/// What a service answers, per address family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyAnswers {
    /// A: the IPv4 members answered.
    pub v4: Selection,
    /// AAAA: the IPv6 members answered.
    pub v6: Selection,
}

impl FamilyAnswers {
    /// The answer of the family `addr`s belong to (IPv4 or IPv6).
    pub fn of(&self, v4: bool) -> &Selection {
        if v4 { &self.v4 } else { &self.v6 }
    }

    /// Each family with the record type it answers.
    pub fn by_type(&self) -> [(&'static str, &Selection); 2] {
        [("A", &self.v4), ("AAAA", &self.v6)]
    }

    /// Every address answered, A then AAAA.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.v4
            .addresses
            .iter()
            .chain(&self.v6.addresses)
            .copied()
            .collect()
    }

    /// Whether some family answers all its members because none is usable.
    pub fn failing_open(&self) -> bool {
        self.v4.failing_open() || self.v6.failing_open()
    }

    /// The `when_all_down` mode in force for some family, if any (A's first).
    pub fn all_down(&self) -> Option<WhenAllDown> {
        self.v4.all_down.or(self.v6.all_down)
    }

    /// The earliest failback held back by `failback_delay`, if any: where it moves, and when.
    pub fn pending_failback(&self) -> Option<&(Vec<IpAddr>, Instant)> {
        [&self.v4, &self.v6]
            .into_iter()
            .filter_map(|s| s.pending_failback.as_ref())
            .min_by_key(|(_, at)| *at)
    }

    /// When the earliest failback held back by `failback_delay` is due, if any.
    pub fn failback_due(&self) -> Option<Instant> {
        self.pending_failback().map(|(_, at)| *at)
    }
}

/// A member as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The address answered.
    pub addr: IpAddr,
    /// Its health (after overrides: forced up counts as up).
    pub state: State,
    /// Its tier: 0 first. Plain members each have their own, in list order.
    pub tier: u32,
    /// Its weight (`weighted`).
    pub weight: u32,
    /// Since when it has been in its current state; None when that does not matter (forced
    /// up by an operator: `failback_delay` does not hold back an operator).
    pub since: Option<Instant>,
}

/// A member as the operator left it: the member and its override, if any.
pub type OverriddenMember = (Candidate, Option<AdminOverride>);

/// The members a policy chooses from, after the operator's overrides: drained members are left
/// out unless every member is drained (then the override is ignored: answering nothing is
/// never what an operator asked for), and forced-up members count as up whatever their checks
/// say. `members` are one family's, in priority order.
pub fn apply_overrides(members: &[OverriddenMember]) -> Vec<Candidate> {
    let all_drained = members
        .iter()
        .all(|(_, admin)| *admin == Some(AdminOverride::Drain));
    members
        .iter()
        .filter(|(_, admin)| all_drained || *admin != Some(AdminOverride::Drain))
        .map(|(member, admin)| match admin {
            Some(AdminOverride::ForceUp) => Candidate {
                state: State::Up,
                since: None,
                ..*member
            },
            _ => *member,
        })
        .collect()
}

/// A service's rules for one family.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The policy.
    pub policy: Policy,
    /// Whether answers move back to a recovered earlier tier.
    pub failback: bool,
    /// How long a recovered earlier tier must have been up before they do.
    pub failback_delay: Duration,
    /// Most addresses one answer holds.
    pub max_answers: usize,
    /// What to answer when no member is usable.
    pub when_all_down: WhenAllDown,
    /// The family's `fallback` addresses.
    pub fallback: &'a [IpAddr],
}

/// Chooses the answer for one family at `now`. `members` are that family's members in
/// priority order (tier by tier), after overrides; `current` is what the family answers now
/// (for `failback = false` and `failback_delay`).
pub fn select(
    rules: &Rules,
    members: &[Candidate],
    current: &Selection,
    now: Instant,
) -> Selection {
    if members.is_empty() {
        return Selection::default();
    }
    let usable: Vec<&Candidate> = members.iter().filter(|m| m.state.is_usable()).collect();
    if usable.is_empty() {
        return all_down(rules, members);
    }
    match rules.policy {
        Policy::Failover => failover(rules, &usable, current, now),
        Policy::All => answer(
            usable
                .iter()
                .take(rules.max_answers)
                .map(|m| m.addr)
                .collect(),
        ),
        Policy::Weighted => weighted(&usable),
    }
}

fn answer(addresses: Vec<IpAddr>) -> Selection {
    Selection {
        addresses,
        ..Selection::default()
    }
}

/// No member is usable: what `when_all_down` says.
fn all_down(rules: &Rules, members: &[Candidate]) -> Selection {
    let mode = rules.when_all_down;
    let mut selection = match mode {
        WhenAllDown::AnswerAll if rules.policy == Policy::Weighted => {
            let all: Vec<&Candidate> = members.iter().collect();
            weighted(&all)
        }
        WhenAllDown::AnswerAll => answer(
            members
                .iter()
                .take(rules.max_answers)
                .map(|m| m.addr)
                .collect(),
        ),
        WhenAllDown::Fallback => answer(rules.fallback.to_vec()),
        WhenAllDown::AnswerNone => Selection::default(),
    };
    selection.all_down = Some(mode);
    selection
}

/// One member per response, drawn by weight: the members that can be drawn and their weights.
/// Members of weight 0 are drawn only when every weight is 0 (then all alike), as Route 53
/// does.
fn weighted(members: &[&Candidate]) -> Selection {
    let all_zero = members.iter().all(|m| m.weight == 0);
    let drawn: Vec<&&Candidate> = members
        .iter()
        .filter(|m| all_zero || m.weight > 0)
        .collect();
    Selection {
        addresses: drawn.iter().map(|m| m.addr).collect(),
        weights: drawn
            .iter()
            .map(|m| if all_zero { 1 } else { m.weight })
            .collect(),
        ..Selection::default()
    }
}

/// The usable members of the first tier that has any, with `failback` and `failback_delay`
/// deciding whether answers on a later tier move back.
fn failover(rules: &Rules, usable: &[&Candidate], current: &Selection, now: Instant) -> Selection {
    let tier_answer = |tier: u32| -> Vec<IpAddr> {
        usable
            .iter()
            .filter(|m| m.tier == tier)
            .take(rules.max_answers)
            .map(|m| m.addr)
            .collect()
    };
    // The tier answered now, if it is a tier of members still usable (an all-down answer
    // is no tier to stay on).
    let current_tier = if current.all_down.is_some() {
        None
    } else {
        current
            .addresses
            .iter()
            .find_map(|addr| usable.iter().find(|m| m.addr == *addr))
            .map(|m| m.tier)
    };
    let first = usable[0].tier;
    let Some(current_tier) = current_tier else {
        return answer(tier_answer(first));
    };
    if !rules.failback || first >= current_tier {
        return answer(tier_answer(current_tier));
    }
    // An earlier tier is usable again: move back once one of its members has been up for
    // `failback_delay`.
    let ready_at = |m: &Candidate| m.since.map_or(now, |since| since + rules.failback_delay);
    if let Some(ready) = usable
        .iter()
        .find(|m| m.tier < current_tier && ready_at(m) <= now)
    {
        return answer(tier_answer(ready.tier));
    }
    let mut selection = answer(tier_answer(current_tier));
    selection.pending_failback = usable
        .iter()
        .filter(|m| m.tier < current_tier)
        .map(|m| (m.tier, ready_at(m)))
        .min_by_key(|(_, at)| *at)
        .map(|(tier, at)| (tier_answer(tier), at));
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn rules(policy: Policy) -> Rules<'static> {
        Rules {
            policy,
            failback: true,
            failback_delay: Duration::ZERO,
            max_answers: 8,
            when_all_down: WhenAllDown::AnswerAll,
            fallback: &[],
        }
    }

    /// Plain members (each its own tier), all in their state since `since`.
    fn members_since(states: &[State], since: Instant) -> Vec<Candidate> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| Candidate {
                addr: ip(&format!("192.0.2.{}", i + 1)),
                state: *s,
                tier: i as u32,
                weight: 1,
                since: Some(since),
            })
            .collect()
    }

    fn members(states: &[State]) -> Vec<Candidate> {
        members_since(states, Instant::now())
    }

    fn answering(addresses: &[&str]) -> Selection {
        answer(addresses.iter().map(|a| ip(a)).collect())
    }

    fn select_now(rules: &Rules, members: &[Candidate], current: &Selection) -> Selection {
        select(rules, members, current, Instant::now())
    }

    #[test]
    fn family_answers_name_each_family_and_list_a_before_aaaa() {
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        let answers = FamilyAnswers {
            v4: answer(vec![v4]),
            v6: Selection {
                addresses: vec![v6],
                all_down: Some(WhenAllDown::AnswerAll),
                ..Selection::default()
            },
        };
        assert_eq!(answers.addresses(), [v4, v6]);
        assert!(answers.failing_open());
        assert_eq!(answers.of(true).addresses, [v4]);
        assert_eq!(answers.of(false).addresses, [v6]);
        assert_eq!(answers.by_type().map(|(t, _)| t), ["A", "AAAA"]);
    }

    #[test]
    fn answers_the_first_usable_member() {
        let sel = select_now(
            &rules(Policy::Failover),
            &members(&[State::Down, State::Up, State::Up]),
            &Selection::default(),
        );
        assert_eq!(sel, answering(&["192.0.2.2"]));
    }

    #[test]
    fn unchecked_primary_is_answered_at_start() {
        let sel = select_now(
            &rules(Policy::Failover),
            &members(&[State::Unknown, State::Unknown]),
            &Selection::default(),
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn all_down_fails_open_with_every_member() {
        let sel = select_now(
            &rules(Policy::Failover),
            &members(&[State::Down, State::Down]),
            &Selection::default(),
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        assert!(sel.failing_open());
    }

    #[test]
    fn all_down_answers_the_fallback_or_nothing_as_configured() {
        let down = members(&[State::Down, State::Down]);
        let fallback = [ip("198.51.100.250")];
        for policy in [Policy::Failover, Policy::All, Policy::Weighted] {
            let with_fallback = Rules {
                when_all_down: WhenAllDown::Fallback,
                fallback: &fallback,
                ..rules(policy)
            };
            let sel = select_now(&with_fallback, &down, &Selection::default());
            assert_eq!(sel.addresses, fallback, "{policy:?}");
            assert_eq!(sel.all_down, Some(WhenAllDown::Fallback));
            assert!(!sel.failing_open());
            // A family without fallback addresses answers nothing.
            let no_fallback = Rules {
                fallback: &[],
                ..with_fallback
            };
            let sel = select_now(&no_fallback, &down, &Selection::default());
            assert!(sel.addresses.is_empty());
            assert_eq!(sel.all_down, Some(WhenAllDown::Fallback));
            let none = Rules {
                when_all_down: WhenAllDown::AnswerNone,
                ..rules(policy)
            };
            let sel = select_now(&none, &down, &Selection::default());
            assert!(sel.addresses.is_empty());
            assert_eq!(sel.all_down, Some(WhenAllDown::AnswerNone));
        }
    }

    #[test]
    fn without_failback_a_healthy_standby_keeps_the_answer() {
        let both_up = members(&[State::Up, State::Up]);
        let no_failback = Rules {
            failback: false,
            ..rules(Policy::Failover)
        };
        let sel = select_now(&no_failback, &both_up, &answering(&["192.0.2.2"]));
        assert_eq!(sel.addresses, vec![ip("192.0.2.2")]);
        let with_failback = select_now(
            &rules(Policy::Failover),
            &both_up,
            &answering(&["192.0.2.2"]),
        );
        assert_eq!(with_failback.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn without_failback_a_failed_standby_moves_to_the_first_usable() {
        let no_failback = Rules {
            failback: false,
            ..rules(Policy::Failover)
        };
        let sel = select_now(
            &no_failback,
            &members(&[State::Up, State::Down]),
            &answering(&["192.0.2.2"]),
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn without_failback_fail_open_does_not_stick() {
        let no_failback = Rules {
            failback: false,
            ..rules(Policy::Failover)
        };
        let mut failing_open = answering(&["192.0.2.1", "192.0.2.2"]);
        failing_open.all_down = Some(WhenAllDown::AnswerAll);
        let sel = select_now(
            &no_failback,
            &members(&[State::Down, State::Up]),
            &failing_open,
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.2")]);
    }

    #[test]
    fn failback_waits_until_the_recovered_member_has_been_up_for_the_delay() {
        let start = Instant::now();
        let delay = Rules {
            failback_delay: Duration::from_secs(30),
            ..rules(Policy::Failover)
        };
        // The primary came back up at `start`; the standby is answered.
        let members = members_since(&[State::Up, State::Up], start);
        let on_standby = answering(&["192.0.2.2"]);
        let early = select(
            &delay,
            &members,
            &on_standby,
            start + Duration::from_secs(29),
        );
        assert_eq!(early.addresses, [ip("192.0.2.2")]);
        assert_eq!(
            early.pending_failback,
            Some((vec![ip("192.0.2.1")], start + Duration::from_secs(30)))
        );
        let due = select(
            &delay,
            &members,
            &on_standby,
            start + Duration::from_secs(30),
        );
        assert_eq!(due.addresses, [ip("192.0.2.1")]);
        assert_eq!(due.pending_failback, None);
        // The delay holds back a move back only: at start, or when the standby fails, a
        // recently recovered primary is answered at once.
        let fresh = select(&delay, &members, &Selection::default(), start);
        assert_eq!(fresh.addresses, [ip("192.0.2.1")]);
        let standby_down = members_since(&[State::Up, State::Down], start);
        let moved = select(&delay, &standby_down, &on_standby, start);
        assert_eq!(moved.addresses, [ip("192.0.2.1")]);
        // An operator's force-up is not held back.
        let forced = [
            Candidate {
                since: None,
                ..members[0]
            },
            members[1],
        ];
        let at_once = select(&delay, &forced, &on_standby, start);
        assert_eq!(at_once.addresses, [ip("192.0.2.1")]);
    }

    #[test]
    fn tiers_answer_every_usable_member_of_the_first_tier_with_any() {
        let tiered = |states: &[(u32, State)]| -> Vec<Candidate> {
            states
                .iter()
                .enumerate()
                .map(|(i, (tier, state))| Candidate {
                    addr: ip(&format!("192.0.2.{}", i + 1)),
                    state: *state,
                    tier: *tier,
                    weight: 1,
                    since: Some(Instant::now()),
                })
                .collect()
        };
        let rules = rules(Policy::Failover);
        let none = Selection::default();
        let both = tiered(&[(0, State::Up), (0, State::Up), (1, State::Up)]);
        assert_eq!(
            select_now(&rules, &both, &none).addresses,
            [ip("192.0.2.1"), ip("192.0.2.2")]
        );
        let one_left = tiered(&[(0, State::Down), (0, State::Up), (1, State::Up)]);
        assert_eq!(
            select_now(&rules, &one_left, &none).addresses,
            [ip("192.0.2.2")]
        );
        let first_gone = tiered(&[
            (0, State::Down),
            (0, State::Down),
            (1, State::Up),
            (1, State::Up),
        ]);
        assert_eq!(
            select_now(&rules, &first_gone, &none).addresses,
            [ip("192.0.2.3"), ip("192.0.2.4")]
        );
        // Without failback, the second tier keeps the answer while any of it is usable.
        let no_failback = Rules {
            failback: false,
            ..rules
        };
        let on_second = answering(&["192.0.2.3"]);
        assert_eq!(
            select_now(&no_failback, &both, &on_second).addresses,
            [ip("192.0.2.3")]
        );
        let capped = Rules {
            max_answers: 1,
            ..rules
        };
        assert_eq!(
            select_now(&capped, &both, &none).addresses,
            [ip("192.0.2.1")]
        );
    }

    #[test]
    fn all_answers_every_usable_member_in_order_up_to_max_answers() {
        let states = [State::Up, State::Down, State::Up, State::Unknown, State::Up];
        let all = rules(Policy::All);
        let sel = select_now(&all, &members(&states), &Selection::default());
        assert_eq!(
            sel.addresses,
            [
                ip("192.0.2.1"),
                ip("192.0.2.3"),
                ip("192.0.2.4"),
                ip("192.0.2.5")
            ]
        );
        let two = Rules {
            max_answers: 2,
            ..all
        };
        let sel = select_now(&two, &members(&states), &Selection::default());
        assert_eq!(sel.addresses, [ip("192.0.2.1"), ip("192.0.2.3")]);
    }

    #[test]
    fn weighted_draws_among_usable_members_and_leaves_out_weight_zero() {
        let mut m = members(&[State::Up, State::Down, State::Up, State::Up]);
        m[0].weight = 3;
        m[2].weight = 0;
        let sel = select_now(&rules(Policy::Weighted), &m, &Selection::default());
        assert_eq!(sel.addresses, [ip("192.0.2.1"), ip("192.0.2.4")]);
        assert_eq!(sel.weights, [3, 1]);
        // Every weight 0: all alike.
        for member in &mut m {
            member.weight = 0;
        }
        let sel = select_now(&rules(Policy::Weighted), &m, &Selection::default());
        assert_eq!(sel.weights, [1, 1, 1]);
    }

    #[test]
    fn overrides_drain_and_force_up_members_before_the_policy_sees_them() {
        use AdminOverride::{Drain, ForceUp};
        let at = Instant::now();
        let c = |n: u8, state: State| Candidate {
            addr: ip(&format!("192.0.2.{n}")),
            state,
            tier: u32::from(n),
            weight: 1,
            since: Some(at),
        };
        let forced = |n: u8| Candidate {
            since: None,
            ..c(n, State::Up)
        };
        let cases = [
            // No overrides: the members as they are.
            (
                vec![(c(1, State::Up), None), (c(2, State::Down), None)],
                vec![c(1, State::Up), c(2, State::Down)],
            ),
            // A drained member is left out, whatever its health.
            (
                vec![(c(1, State::Up), Some(Drain)), (c(2, State::Up), None)],
                vec![c(2, State::Up)],
            ),
            // Forced up counts as up, even when down or unknown.
            (
                vec![
                    (c(1, State::Down), Some(ForceUp)),
                    (c(2, State::Unknown), Some(ForceUp)),
                ],
                vec![forced(1), forced(2)],
            ),
            // Every member drained: the drains are ignored, so something is still answered.
            (
                vec![
                    (c(1, State::Up), Some(Drain)),
                    (c(2, State::Down), Some(Drain)),
                ],
                vec![c(1, State::Up), c(2, State::Down)],
            ),
            // Drain and force-up together keep their order.
            (
                vec![
                    (c(1, State::Up), Some(Drain)),
                    (c(2, State::Down), None),
                    (c(3, State::Down), Some(ForceUp)),
                ],
                vec![c(2, State::Down), forced(3)],
            ),
        ];
        for (members, expected) in cases {
            assert_eq!(apply_overrides(&members), expected, "{members:?}");
        }
        assert!(apply_overrides(&[]).is_empty());
    }

    #[test]
    fn empty_family_answers_nothing() {
        assert_eq!(
            select_now(&rules(Policy::Failover), &[], &Selection::default()),
            Selection::default()
        );
    }
}
