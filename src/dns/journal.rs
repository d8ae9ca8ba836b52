//! The journal a zone's snapshot carries for IXFR (RFC 1995): the changes of its records from
//! one serial to the next, the last [`MAX_CHANGES`] of them, so a secondary that is a few
//! serials behind gets only what changed, condensed. Immutable once published, like the
//! snapshot that holds it; the snapshot module decides what each new snapshot's journal holds.

use std::collections::VecDeque;
use std::sync::Arc;

use hickory_proto::rr::Record;

/// Most changes a zone's journal keeps.
pub const MAX_CHANGES: usize = 1024;

/// The records one change removed and added, from one serial to the next.
#[derive(Debug)]
pub struct Change {
    /// The serial before.
    pub from: u32,
    /// The serial after.
    pub to: u32,
    /// Records that were answered before and are not after.
    pub removed: Vec<Record>,
    /// Records answered after that were not before.
    pub added: Vec<Record>,
}

/// A zone's recent changes, oldest first, each from the serial the one before went to.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    changes: VecDeque<Arc<Change>>,
}

/// What changed from a serial to the zone's current one, condensed (RFC 1995 §5): each record
/// at most once, a record removed and added again not at all.
pub struct Difference {
    /// Records to remove.
    pub removed: Vec<Record>,
    /// Records to add.
    pub added: Vec<Record>,
}

impl Journal {
    /// The condensed difference from `serial` to `current`, if the journal reaches back to
    /// `serial` without a gap.
    pub fn since(&self, serial: u32, current: u32) -> Option<Difference> {
        let start = self.changes.iter().position(|c| c.from == serial)?;
        let chain = self.changes.iter().skip(start);
        let mut removed: Vec<Record> = Vec::new();
        let mut added: Vec<Record> = Vec::new();
        let mut at = serial;
        for change in chain {
            if at == current {
                break;
            }
            if change.from != at {
                return None;
            }
            for record in &change.removed {
                match added.iter().position(|r| r == record) {
                    Some(i) => {
                        added.swap_remove(i);
                    }
                    None => removed.push(record.clone()),
                }
            }
            for record in &change.added {
                match removed.iter().position(|r| r == record) {
                    Some(i) => {
                        removed.swap_remove(i);
                    }
                    None => added.push(record.clone()),
                }
            }
            at = change.to;
        }
        (at == current).then_some(Difference { removed, added })
    }

    /// This journal with `change` after its last, the oldest dropped past [`MAX_CHANGES`].
    pub fn with(&self, change: Change) -> Self {
        let mut changes = self.changes.clone();
        if changes.len() == MAX_CHANGES {
            changes.pop_front();
        }
        changes.push_back(Arc::new(change));
        Self { changes }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData};

    use super::*;

    fn a(last: u8) -> Record {
        let name = Name::from_ascii("www.example.test.").expect("name");
        Record::from_rdata(name, 5, RData::A(A(Ipv4Addr::new(192, 0, 2, last))))
    }

    fn change(from: u32, to: u32, removed: &[u8], added: &[u8]) -> Change {
        Change {
            from,
            to,
            removed: removed.iter().map(|&n| a(n)).collect(),
            added: added.iter().map(|&n| a(n)).collect(),
        }
    }

    #[test]
    fn a_failover_and_back_condense_to_nothing_and_a_gap_to_none() {
        let journal = Journal::default()
            .with(change(1, 2, &[10], &[11]))
            .with(change(2, 3, &[11], &[10]))
            .with(change(3, 4, &[10], &[12]));
        let back = journal.since(1, 3).expect("reaches back to 1");
        assert!(back.removed.is_empty() && back.added.is_empty());
        let all = journal.since(1, 4).expect("reaches back to 1");
        assert_eq!((all.removed, all.added), (vec![a(10)], vec![a(12)]));
        let last = journal.since(3, 4).expect("reaches back to 3");
        assert_eq!((last.removed, last.added), (vec![a(10)], vec![a(12)]));
        assert!(journal.since(0, 4).is_none(), "before the journal");
        assert!(
            journal.since(2, 5).is_none(),
            "not up to the current serial"
        );
    }

    #[test]
    fn the_journal_keeps_the_last_changes_only() {
        let mut journal = Journal::default();
        for serial in 0..(MAX_CHANGES as u32 + 10) {
            journal = journal.with(change(serial, serial + 1, &[1], &[2]));
        }
        assert!(journal.since(5, MAX_CHANGES as u32 + 10).is_none());
        assert!(journal.since(10, MAX_CHANGES as u32 + 10).is_some());
    }
}
