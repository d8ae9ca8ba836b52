//! Policies: from member states to the addresses a service answers.
//!
//! Pure functions, applied per address family: `A` answers come from the IPv4 members and
//! `AAAA` answers from the IPv6 members, each family with its own primary and standbys.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::Policy;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The addresses answered, in member order.
    pub addresses: Vec<IpAddr>,
    /// True when every member of the family is down and all of them are answered anyway:
    /// answering something that may work beats answering nothing.
    pub failing_open: bool,
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
        self.v4.failing_open || self.v6.failing_open
    }
}

/// A member as the operator left it: its address, its health, and its override if any.
pub type OverriddenMember = (IpAddr, State, Option<AdminOverride>);

/// The members a policy chooses from, after the operator's overrides: drained members are left
/// out unless every member is drained (then the override is ignored: answering nothing is
/// never what an operator asked for), and forced-up members count as up whatever their checks
/// say. `members` are one family's, in priority order.
pub fn apply_overrides(members: &[OverriddenMember]) -> Vec<(IpAddr, State)> {
    let all_drained = members
        .iter()
        .all(|(_, _, admin)| *admin == Some(AdminOverride::Drain));
    members
        .iter()
        .filter(|(_, _, admin)| all_drained || *admin != Some(AdminOverride::Drain))
        .map(|(addr, state, admin)| match admin {
            Some(AdminOverride::ForceUp) => (*addr, State::Up),
            _ => (*addr, *state),
        })
        .collect()
}

/// Chooses the answer for one family. `members` are that family's members in priority order
/// with their states; `current` is what the family answers now (used when `failback` is off,
/// to stay on a healthy standby instead of moving back to a recovered primary).
pub fn select(
    policy: Policy,
    failback: bool,
    members: &[(IpAddr, State)],
    current: &[IpAddr],
) -> Selection {
    match policy {
        Policy::Failover => failover(failback, members, current),
    }
}

fn failover(failback: bool, members: &[(IpAddr, State)], current: &[IpAddr]) -> Selection {
    if members.is_empty() {
        return Selection::default();
    }
    if !failback
        && let [held] = current
        && members
            .iter()
            .any(|(addr, state)| addr == held && state.is_usable())
    {
        return Selection {
            addresses: vec![*held],
            failing_open: false,
        };
    }
    match members.iter().find(|(_, state)| state.is_usable()) {
        Some((addr, _)) => Selection {
            addresses: vec![*addr],
            failing_open: false,
        },
        None => Selection {
            addresses: members.iter().map(|(addr, _)| *addr).collect(),
            failing_open: true,
        },
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn family_answers_name_each_family_and_list_a_before_aaaa() {
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        let answers = FamilyAnswers {
            v4: Selection {
                addresses: vec![v4],
                failing_open: false,
            },
            v6: Selection {
                addresses: vec![v6],
                failing_open: true,
            },
        };
        assert_eq!(answers.addresses(), [v4, v6]);
        assert!(answers.failing_open());
        assert_eq!(answers.of(true).addresses, [v4]);
        assert_eq!(answers.of(false).addresses, [v6]);
        assert_eq!(answers.by_type().map(|(t, _)| t), ["A", "AAAA"]);
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn members(states: &[State]) -> Vec<(IpAddr, State)> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| (ip(&format!("192.0.2.{}", i + 1)), *s))
            .collect()
    }

    #[test]
    fn answers_the_first_usable_member() {
        let sel = select(
            Policy::Failover,
            true,
            &members(&[State::Down, State::Up, State::Up]),
            &[],
        );
        assert_eq!(
            sel,
            Selection {
                addresses: vec![ip("192.0.2.2")],
                failing_open: false
            }
        );
    }

    #[test]
    fn unchecked_primary_is_answered_at_start() {
        let sel = select(
            Policy::Failover,
            true,
            &members(&[State::Unknown, State::Unknown]),
            &[],
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn all_down_fails_open_with_every_member() {
        let sel = select(
            Policy::Failover,
            true,
            &members(&[State::Down, State::Down]),
            &[],
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        assert!(sel.failing_open);
    }

    #[test]
    fn without_failback_a_healthy_standby_keeps_the_answer() {
        let both_up = members(&[State::Up, State::Up]);
        let sel = select(Policy::Failover, false, &both_up, &[ip("192.0.2.2")]);
        assert_eq!(sel.addresses, vec![ip("192.0.2.2")]);
        let with_failback = select(Policy::Failover, true, &both_up, &[ip("192.0.2.2")]);
        assert_eq!(with_failback.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn without_failback_a_failed_standby_moves_to_the_first_usable() {
        let sel = select(
            Policy::Failover,
            false,
            &members(&[State::Up, State::Down]),
            &[ip("192.0.2.2")],
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn without_failback_fail_open_does_not_stick() {
        let sel = select(
            Policy::Failover,
            false,
            &members(&[State::Down, State::Up]),
            &[ip("192.0.2.1"), ip("192.0.2.2")],
        );
        assert_eq!(sel.addresses, vec![ip("192.0.2.2")]);
    }

    #[test]
    fn overrides_drain_and_force_up_members_before_the_policy_sees_them() {
        use AdminOverride::{Drain, ForceUp};
        let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        let cases = [
            // No overrides: the members as they are.
            (
                vec![(a, State::Up, None), (b, State::Down, None)],
                vec![(a, State::Up), (b, State::Down)],
            ),
            // A drained member is left out, whatever its health.
            (
                vec![(a, State::Up, Some(Drain)), (b, State::Up, None)],
                vec![(b, State::Up)],
            ),
            // Forced up counts as up, even when down or unknown.
            (
                vec![
                    (a, State::Down, Some(ForceUp)),
                    (b, State::Unknown, Some(ForceUp)),
                ],
                vec![(a, State::Up), (b, State::Up)],
            ),
            // Every member drained: the drains are ignored, so something is still answered.
            (
                vec![(a, State::Up, Some(Drain)), (b, State::Down, Some(Drain))],
                vec![(a, State::Up), (b, State::Down)],
            ),
            // Drain and force-up together keep their order.
            (
                vec![
                    (a, State::Up, Some(Drain)),
                    (b, State::Down, None),
                    (c, State::Down, Some(ForceUp)),
                ],
                vec![(b, State::Down), (c, State::Up)],
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
            select(Policy::Failover, true, &[], &[]),
            Selection::default()
        );
    }
}
