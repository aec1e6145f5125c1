//! The security context: what a wasm guest cannot mean is refused or ignored.

use super::*;

impl Validator<'_> {
    pub(super) fn security_context(&mut self, c: &manifest::Container, field: &str) {
        let Some(sc) = &c.security_context else {
            return;
        };
        let f = format!("{field}.securityContext");
        if sc.privileged == Some(true) {
            self.push(field::forbidden(format!("{f}.privileged"), "a wasm guest cannot be privileged: it only ever reaches its mounts and its pod's network"));
        }
        if let Some(caps) = &sc.capabilities
            && !caps.add.is_empty()
        {
            self.err(
                format!("{f}.capabilities.add"),
                format!(
                    "Forbidden: Linux capabilities have no meaning for a wasm guest: {:?}",
                    caps.add
                ),
            );
        }
        if sc.allow_privilege_escalation == Some(true) {
            self.push(field::forbidden(
                format!("{f}.allowPrivilegeEscalation"),
                "a wasm guest has no privileges to escalate to",
            ));
        }
        if let Some(pm) = sc.proc_mount.as_deref()
            && pm != "Default"
        {
            self.push(field::forbidden(
                format!("{f}.procMount"),
                &format!("{pm:?}: a wasm guest has no /proc"),
            ));
        }
        let identity =
            sc.run_as_user.is_some() || sc.run_as_group.is_some() || sc.run_as_non_root.is_some();
        self.ignored(&f, identity, "wasm guests have no user or group identity");
        self.ignored(
            &format!("{f}.seccompProfile"),
            sc.seccomp_profile.is_some(),
            "wasm guests make no system calls",
        );
    }
}
