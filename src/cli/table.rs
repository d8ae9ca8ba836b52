//! The table `status` prints: one line per member, the service's name and answer on its first.

use std::fmt::Write as _;

use failover_dns::status::Status;

/// A table of every service and member, one line per member.
pub fn render_table(status: &Status) -> String {
    let mut rows = vec![
        [
            "SERVICE",
            "ANSWERING",
            "MEMBER",
            "STATE",
            "ADMIN",
            "SINCE",
            "LAST CHECK",
        ]
        .map(String::from),
    ];
    for service in &status.services {
        let answering = service
            .answering
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + if service.failing_open {
                " (failing open)"
            } else {
                ""
            };
        for (i, member) in service.members.iter().enumerate() {
            let last = match &member.last_check {
                None => "-".to_string(),
                Some(check) => match &check.error {
                    None => format!("{} {:.1}ms", check.result, check.latency_ms),
                    Some(error) => format!("{}: {error}", check.result),
                },
            };
            rows.push([
                if i == 0 {
                    service.name.clone()
                } else {
                    String::new()
                },
                if i == 0 {
                    answering.clone()
                } else {
                    String::new()
                },
                member.address.to_string(),
                member.state.clone(),
                member.admin.map_or("-".to_string(), |a| a.to_string()),
                member.since.clone(),
                last,
            ]);
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:width$}  ", width = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
