//! The zone-file corpus (`tests/zones/corpus/`): every zone file that NSD (`nsd-checkzone`)
//! or Knot (`kzonecheck`) loads must load here too, unless it is listed below with the reason
//! or refused for a reason the README lists as deliberate (no NS at the apex, as Knot refuses
//! it); and none of the listed ones may load unnoticed (the list must shrink as the reader
//! learns).

use std::path::Path;
use std::process::{Command, Stdio};

use failover_dns::zone;

use crate::common::repo_root;

/// Zone files a peer loads that failover-dns refuses, and why (none today).
const NOT_YET: &[(&str, &str)] = &[];

/// Whether `program args…` exits with success; panics, saying what to install, if it is not
/// there.
fn accepts(program: &str, args: &[&str], package: &str) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("{program}: {e}; the corpus test needs it (apt-get install -y {package})")
        })
        .success()
}

#[test]
fn every_zone_file_nsd_or_knot_loads_loads_here_too() {
    let dir = repo_root().join("tests/zones/corpus");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST");
    let (mut both, mut either, mut ours, mut deliberate) = (0, 0, 0, 0);
    let mut refused = Vec::new();
    let mut loads_now = Vec::new();
    for line in manifest
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut fields = line.split('\t');
        let (Some(file), Some(origin)) = (fields.next(), fields.next()) else {
            panic!("MANIFEST line without file and origin: {line}");
        };
        let path = dir.join(file);
        let path_text = path.to_str().expect("utf-8 path");
        let nsd = accepts("nsd-checkzone", &[origin, path_text], "nsd");
        let knot = accepts("kzonecheck", &["-o", origin, path_text], "knot-dnssecutils");
        if !(nsd || knot) {
            continue;
        }
        either += 1;
        both += usize::from(nsd && knot);
        let origin = failover_dns::zone::name_from_text(origin).expect("origin");
        let loaded = zone::load(Path::new(&path), &origin);
        let listed = NOT_YET.iter().find(|(f, _)| *f == file);
        match (loaded, listed) {
            (Ok(_), None) => ours += 1,
            (Ok(_), Some(_)) => loads_now.push(file.to_string()),
            (Err(_), Some(_)) => {}
            // Knot refuses these too: a zone is served only with its servers named.
            (Err(e), None) if e.message.contains("no NS records at the zone apex") && !knot => {
                deliberate += 1;
            }
            (Err(e), None) => refused.push(format!("{file}: {e}")),
        }
    }
    assert!(
        both >= 60,
        "only {both} corpus files load in both NSD and Knot: is the corpus whole?"
    );
    assert!(
        refused.is_empty(),
        "NSD or Knot loads these, failover-dns refuses them:\n{}",
        refused.join("\n")
    );
    assert!(
        loads_now.is_empty(),
        "these load now; take them off NOT_YET: {loads_now:?}"
    );
    assert_eq!(ours + deliberate + NOT_YET.len(), either);
}
