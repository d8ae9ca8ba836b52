//! The per-member health state machine: `(state, probe outcome, now) -> (state, transition?)`.
//!
//! Pure and clock-free (time is passed in), so rise/fall behaviour is unit-tested without
//! sleeping. It never performs I/O.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

/// What the server believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not checked yet. Counts as healthy for answers, so a fresh server answers the primary
    /// instead of failing open; the first check result replaces it directly.
    Unknown,
    /// Passing checks.
    Up,
    /// Failing checks.
    Down,
}

impl State {
    /// Whether a member in this state may be answered.
    pub fn is_usable(self) -> bool {
        self != State::Down
    }
}

impl State {
    /// Its position in [`crate::metrics::STATES`], which the `member_state` metric is one-hot
    /// over.
    pub fn index(self) -> usize {
        match self {
            State::Unknown => 0,
            State::Up => 1,
            State::Down => 2,
        }
    }

    /// The lower-case name operators see in logs, status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check failed, in a few words. Mostly one of a few fixed phrases ("connection
/// refused"), which a failing member at 20,000 checks/s should not allocate (and free) anew
/// each time.
pub type Failure = Cow<'static, str>;

/// The result of one check: its latency, or why it failed.
pub type Outcome = Result<Duration, Failure>;

/// Why a check could not be made at all: this host is out of file descriptors (EMFILE,
/// ENFILE). That says nothing about the member, so it is *no result*: never a failure that
/// moves a member down, whoever exhausted the descriptors.
pub const NO_DESCRIPTORS: &str = crate::cause::OUT_OF_DESCRIPTORS;

/// Whether `failure` is no result about the member (see [`NO_DESCRIPTORS`]).
pub fn is_no_result(failure: &Failure) -> bool {
    failure.as_ref() == NO_DESCRIPTORS || failure.as_ref() == crate::cause::NO_SCRIPT_SLOT
}

/// A change of state, with the check result that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why: the failing check's error, or the count of successes that brought it up.
    pub reason: String,
}

/// A member's health and the history rise/fall needs.
#[derive(Debug, Clone)]
pub struct MemberHealth {
    /// Current state.
    pub state: State,
    /// When the current state began.
    pub since: Instant,
    /// Consecutive successful checks, reset by a failure.
    pub successes: u32,
    /// Consecutive failed checks, reset by a success.
    pub failures: u32,
}

impl MemberHealth {
    /// A member that has not been checked yet.
    pub fn new(now: Instant) -> Self {
        Self {
            state: State::Unknown,
            since: now,
            successes: 0,
            failures: 0,
        }
    }

    /// Applies one check result. An unknown member takes the first result's state at once;
    /// an up member goes down after `fall` consecutive failures, a down one up after `rise`
    /// consecutive successes.
    pub fn observe(
        &mut self,
        outcome: &Outcome,
        rise: u32,
        fall: u32,
        now: Instant,
    ) -> Option<Transition> {
        let next = match outcome {
            Ok(_) => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                match self.state {
                    State::Unknown => Some((State::Up, "first check passed".to_string())),
                    State::Down if self.successes >= rise => Some((
                        State::Up,
                        format!("{} consecutive checks passed", self.successes),
                    )),
                    _ => None,
                }
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                match self.state {
                    State::Unknown => Some((State::Down, error.to_string())),
                    State::Up if self.failures >= fall => Some((State::Down, error.to_string())),
                    _ => None,
                }
            }
        };
        let (to, reason) = next?;
        Some(self.enter(to, reason, now))
    }

    /// The member cannot be checked at all (its probe could not be built): down, never
    /// `unknown` for good.
    pub fn cannot_check(&mut self, reason: String, now: Instant) -> Option<Transition> {
        if self.state == State::Down {
            return None;
        }
        Some(self.enter(State::Down, reason, now))
    }

    fn enter(&mut self, to: State, reason: String, now: Instant) -> Transition {
        let from = std::mem::replace(&mut self.state, to);
        self.since = now;
        Transition { from, to, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Ok(Duration::from_millis(1));

    #[test]
    fn index_names_the_state_in_the_metric() {
        for state in [State::Unknown, State::Up, State::Down] {
            assert_eq!(crate::metrics::STATES[state.index()], state.as_str());
        }
    }

    fn fail() -> Outcome {
        Err("connection refused".into())
    }

    #[test]
    fn first_result_decides_unknown_member() {
        let now = Instant::now();
        let mut up = MemberHealth::new(now);
        assert_eq!(up.observe(&OK, 3, 3, now).map(|t| t.to), Some(State::Up));
        let mut down = MemberHealth::new(now);
        let t = down.observe(&fail(), 3, 3, now).expect("transition");
        assert_eq!(
            (t.from, t.to, t.reason.as_str()),
            (State::Unknown, State::Down, "connection refused")
        );
    }

    #[test]
    fn up_member_goes_down_after_fall_consecutive_failures() {
        let now = Instant::now();
        let mut member = MemberHealth::new(now);
        member.observe(&OK, 2, 3, now);
        assert_eq!(member.observe(&fail(), 2, 3, now), None);
        assert_eq!(member.observe(&fail(), 2, 3, now), None);
        let later = now + Duration::from_secs(1);
        let t = member
            .observe(&fail(), 2, 3, later)
            .expect("down on third failure");
        assert_eq!((t.from, t.to), (State::Up, State::Down));
        assert_eq!(member.since, later);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let now = Instant::now();
        let mut member = MemberHealth::new(now);
        member.observe(&OK, 2, 2, now);
        member.observe(&fail(), 2, 2, now);
        member.observe(&OK, 2, 2, now);
        assert_eq!(
            member.observe(&fail(), 2, 2, now),
            None,
            "flapping must not bring it down"
        );
        assert_eq!(member.state, State::Up);
    }

    #[test]
    fn down_member_comes_up_after_rise_consecutive_successes() {
        let now = Instant::now();
        let mut member = MemberHealth::new(now);
        member.observe(&fail(), 3, 2, now);
        assert_eq!(member.observe(&OK, 3, 2, now), None);
        member.observe(&fail(), 3, 2, now);
        assert_eq!(member.observe(&OK, 3, 2, now), None);
        assert_eq!(member.observe(&OK, 3, 2, now), None);
        let t = member.observe(&OK, 3, 2, now).expect("up on third success");
        assert_eq!((t.from, t.to), (State::Down, State::Up));
        assert_eq!(t.reason, "3 consecutive checks passed");
    }

    #[test]
    fn only_descriptor_exhaustion_is_no_result() {
        assert!(is_no_result(&NO_DESCRIPTORS.into()));
        assert!(!is_no_result(&"connection refused".into()));
    }

    #[test]
    fn a_member_that_cannot_be_checked_is_down() {
        let now = Instant::now();
        let mut member = MemberHealth::new(now);
        let t = member.cannot_check("bad".into(), now).expect("down");
        assert_eq!((t.from, t.to), (State::Unknown, State::Down));
        assert_eq!(member.cannot_check("bad".into(), now), None);
    }

    #[test]
    fn unknown_counts_as_usable_and_down_does_not() {
        assert!(State::Unknown.is_usable());
        assert!(State::Up.is_usable());
        assert!(!State::Down.is_usable());
    }
}
