//! Fields of a Linux pod with no wasm meaning (host namespaces), and fields only a cluster acts on.

use super::*;

impl Validator<'_> {
    pub(super) fn refuse_host_namespaces(&mut self, spec: &manifest::PodSpec) {
        if spec.host_network == Some(true) {
            self.push(field::forbidden("spec.hostNetwork", "a wasm pod has no host network namespace to join; its containers share a virtual loopback"));
        }
        if spec.host_pid == Some(true) {
            self.push(field::forbidden(
                "spec.hostPID",
                "wasm guests are not host processes; there is no PID namespace to share",
            ));
        }
        if spec.host_ipc == Some(true) {
            self.push(field::forbidden(
                "spec.hostIPC",
                "wasm guests have no System V IPC; there is no IPC namespace to share",
            ));
        }
        if spec.share_process_namespace == Some(true) {
            self.push(field::forbidden(
                "spec.shareProcessNamespace",
                "wasm guests are not processes and cannot see or signal each other",
            ));
        }
        if let Some(sc) = &spec.security_context {
            if sc.sysctls.is_some() {
                self.push(field::forbidden(
                    "spec.securityContext.sysctls",
                    "a wasm pod has no kernel to apply sysctls to",
                ));
            }
            let identity = sc.run_as_user.is_some()
                || sc.run_as_group.is_some()
                || sc.run_as_non_root.is_some()
                || sc.fs_group.is_some()
                || sc.supplemental_groups.is_some();
            self.ignored(
                "spec.securityContext",
                identity,
                "wasm guests have no user or group identity",
            );
            self.ignored(
                "spec.securityContext.seccompProfile",
                sc.seccomp_profile.is_some(),
                "wasm guests make no system calls",
            );
        }
    }

    pub(super) fn cluster_only_fields(&mut self, spec: &manifest::PodSpec) {
        let sched = "cluster scheduling; this runtime is the node";
        self.ignored("spec.nodeName", spec.node_name.is_some(), sched);
        self.ignored("spec.nodeSelector", spec.node_selector.is_some(), sched);
        self.ignored("spec.affinity", spec.affinity.is_some(), sched);
        self.ignored("spec.tolerations", spec.tolerations.is_some(), sched);
        self.ignored("spec.schedulerName", spec.scheduler_name.is_some(), sched);
        self.ignored(
            "spec.priorityClassName",
            spec.priority_class_name.is_some(),
            sched,
        );
        self.ignored("spec.priority", spec.priority.is_some(), sched);
        self.ignored(
            "spec.preemptionPolicy",
            spec.preemption_policy.is_some(),
            sched,
        );
        self.ignored(
            "spec.topologySpreadConstraints",
            spec.topology_spread_constraints.is_some(),
            sched,
        );
        self.ignored(
            "spec.dnsPolicy",
            spec.dns_policy.is_some(),
            "there is no cluster DNS",
        );
        self.ignored(
            "spec.dnsConfig",
            spec.dns_config.is_some(),
            "there is no cluster DNS",
        );
        let api = "there is no API server to authenticate to";
        self.ignored(
            "spec.serviceAccountName",
            spec.service_account_name.is_some(),
            api,
        );
        self.ignored("spec.serviceAccount", spec.service_account.is_some(), api);
        self.ignored(
            "spec.automountServiceAccountToken",
            spec.automount_service_account_token.is_some(),
            api,
        );
        self.ignored(
            "spec.enableServiceLinks",
            spec.enable_service_links.is_some(),
            "there are no cluster services",
        );
        self.ignored(
            "spec.imagePullSecrets",
            spec.image_pull_secrets.is_some(),
            "images are local .wasm files",
        );
        self.ignored(
            "spec.runtimeClassName",
            spec.runtime_class_name.is_some(),
            "wasipod is the only runtime",
        );
    }
}
