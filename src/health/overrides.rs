//! Operator overrides (drain, force-up) as the monitor keeps them: setting one, handing them
//! to the state file's saver, and starting from a damaged state file.
//!
//! What an override does to an answer is the policy's rule ([`crate::policy::apply_overrides`]);
//! writing the file is the saver's ([`super::admin`]). Nothing here waits on the disk.

use std::net::IpAddr;
use std::time::SystemTime;

use hickory_proto::rr::{LowerName, Name};
use tracing::{error, info};

use super::AdminError;
use super::admin::{self, Damaged, SaveTicket, SavedOverride};
use super::monitor::Monitor;
use crate::policy::AdminOverride;

impl Monitor {
    /// Starts from a damaged state file (see [`admin::recover`]): every configured member
    /// whose address it names is drained, and those drains are saved once checks start.
    pub fn recover_damaged(&mut self, damaged: Damaged) {
        let now = SystemTime::now();
        let mut drained = Vec::new();
        for service in &self.plan.services {
            let key = LowerName::new(&service.name);
            for member in &service.members {
                if damaged.text.contains(&member.address.to_string()) {
                    self.overrides
                        .insert((key.clone(), member.address), (AdminOverride::Drain, now));
                    drained.push(format!("{} of {}", member.address, service.name));
                }
            }
        }
        error!(
            error = %damaged.error,
            moved_to = ?damaged.moved_to,
            drained = drained.len(),
            "the state file is damaged ({}); started without it, kept it aside as {}, and drained every member it names until an operator says otherwise: {}",
            damaged.error,
            damaged.moved_to.as_ref().map_or("(could not move it)".to_string(), |p| p.display().to_string()),
            if drained.is_empty() { "none".to_string() } else { drained.join(", ") },
        );
        self.unsaved = true;
        self.damaged = Some(damaged);
        for s in 0..self.plan.services.len() {
            self.reselect(s, "drained after a damaged state file");
        }
    }

    pub(super) fn set_admin(
        &mut self,
        service: &str,
        member: IpAddr,
        admin: Option<AdminOverride>,
    ) -> Result<(bool, Option<SaveTicket>), AdminError> {
        let wanted = Name::from_ascii(service)
            .map(|n| LowerName::new(&n))
            .map_err(|_| AdminError::UnknownService(service.to_string()))?;
        let s = self
            .plan
            .services
            .iter()
            .position(|svc| LowerName::new(&svc.name) == wanted)
            .ok_or_else(|| AdminError::UnknownService(service.to_string()))?;
        let name = self.plan.services[s].name.clone();
        if !self.plan.services[s].has_member(member) {
            return Err(AdminError::UnknownMember {
                service: name.to_string(),
                member,
            });
        }
        let key = (wanted, member);
        let before = self.overrides.get(&key).map(|o| o.0);
        match admin {
            Some(admin) => {
                if before != Some(admin) {
                    self.overrides.insert(key, (admin, SystemTime::now()));
                }
            }
            None => {
                self.overrides.remove(&key);
            }
        }
        let label = admin.map_or("auto".to_string(), |a| a.to_string());
        info!(service = %name, member = %member, admin = %label, "admin set member {member} of {name} to {label}");
        // In force at once; saved off this task (a stalled disk must not stall failovers).
        let changed = self.reselect(s, &format!("admin set member {member} to {label}"));
        let ticket = self
            .request_save()
            .and_then(|version| Some(self.saver.as_ref()?.ticket(version)));
        Ok((changed, ticket))
    }

    /// Hands the overrides to the saver; the version to wait for, once it runs.
    pub(super) fn request_save(&mut self) -> Option<u64> {
        let saved: Vec<SavedOverride> = self
            .overrides
            .iter()
            .map(|((service, member), (admin, since))| SavedOverride {
                service: service.to_string(),
                member: *member,
                admin: *admin,
                since: admin::unix_seconds(*since),
            })
            .collect();
        match &mut self.saver {
            Some(saver) => Some(saver.save(saved)),
            None => {
                self.unsaved = true;
                None
            }
        }
    }
}
