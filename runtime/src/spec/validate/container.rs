//! Containers: names, images, argv, env, mounts, working directory, resources, probes and hooks, ports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path};

use super::*;

impl Validator<'_> {
    #[expect(
        clippy::too_many_arguments,
        reason = "one validator step per field group; the arguments are the fields it reads"
    )]
    pub(super) fn container(
        &mut self,
        c: &manifest::Container,
        field: &str,
        kind: ContainerKind,
        volumes: &[VolumeSpec],
        volume_index: &HashMap<String, usize>,
        pod: &PodFields<'_>,
        names: &mut HashSet<String>,
        port_names: &mut HashSet<String>,
    ) -> Option<ContainerSpec> {
        let start_errors = self.errors.len();
        if c.name.is_empty() {
            self.push(field::required(format!("{field}.name"), ""));
        } else if !is_dns_label(&c.name) {
            self.err(
                format!("{field}.name"),
                format!("Invalid value: {:?}: {LABEL_MSG}", c.name),
            );
        } else if !names.insert(c.name.clone()) {
            self.err(
                format!("{field}.name"),
                format!("Duplicate value: {:?}", c.name),
            );
        }

        let image_ref = self.image(&c.image, &format!("{field}.image"));

        match (kind, c.restart_policy.as_deref()) {
            (_, None) => {}
            (ContainerKind::Init, Some("Always")) => {}
            (ContainerKind::Init, Some(other)) => self.err(
                format!("{field}.restartPolicy"),
                format!("Unsupported value: {other:?}: supported values: \"Always\""),
            ),
            (ContainerKind::App, Some(_)) => self.push(field::forbidden(
                format!("{field}.restartPolicy"),
                "may not be set for non-init containers",
            )),
        }
        let ports: Vec<(Option<String>, i64)> = c
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.container_port))
            .collect();
        let startup_probe = c
            .startup_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.startupProbe"), &ports, true));
        let liveness_probe = c
            .liveness_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.livenessProbe"), &ports, true));
        let readiness_probe = c
            .readiness_probe
            .as_ref()
            .and_then(|p| self.probe(p, &format!("{field}.readinessProbe"), &ports, false));
        let sidecar = kind == ContainerKind::Init && c.restart_policy.as_deref() == Some("Always");
        if kind == ContainerKind::Init && !sidecar {
            for (name, set) in [
                ("startupProbe", c.startup_probe.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
            ] {
                if set {
                    self.push(field::forbidden(
                        format!("{field}.{name}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
        let (mut post_start, mut pre_stop) = (None, None);
        if let Some(l) = &c.lifecycle {
            let lf = format!("{field}.lifecycle");
            if l.stop_signal.is_some() {
                self.push(field::forbidden(
                    format!("{lf}.stopSignal"),
                    "WASI has no signals; see the SIGTERM contract",
                ));
            }
            for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if h.as_ref().is_some_and(|h| h.grpc.is_some()) {
                    self.push(field::forbidden(
                        format!("{lf}.{name}.grpc"),
                        "lifecycle hooks take exec, httpGet, tcpSocket or sleep; gRPC is for probes",
                    ));
                }
            }
            if let Some(h) = &l.post_start {
                post_start = self.action(
                    &h.exec,
                    &h.http_get,
                    &h.tcp_socket,
                    &h.sleep,
                    None,
                    &format!("{lf}.postStart"),
                    &ports,
                );
            }
            if let Some(h) = &l.pre_stop {
                pre_stop = self.action(
                    &h.exec,
                    &h.http_get,
                    &h.tcp_socket,
                    &h.sleep,
                    None,
                    &format!("{lf}.preStop"),
                    &ports,
                );
            }
        }
        if c.stdin == Some(true) || c.stdin_once == Some(true) {
            self.push(field::forbidden(
                format!("{field}.stdin"),
                "guests have no attached standard input (it is empty)",
            ));
        }
        if c.tty == Some(true) {
            self.push(field::forbidden(
                format!("{field}.tty"),
                "guests have no terminal",
            ));
        }
        self.ignored(
            &format!("{field}.imagePullPolicy"),
            c.image_pull_policy.is_some(),
            "images are local .wasm files",
        );
        let (termination_message_path, termination_message_policy) =
            self.termination_message(c, field);
        self.security_context(c, field);

        // Ports.
        for (i, p) in c.ports.iter().enumerate() {
            let pf = format!("{field}.ports[{i}]");
            if !(1..=65535).contains(&p.container_port) {
                self.err(
                    format!("{pf}.containerPort"),
                    format!(
                        "Invalid value: {}: must be between 1 and 65535, inclusive",
                        p.container_port
                    ),
                );
            }
            if let Some(proto) = p.protocol.as_deref()
                && !matches!(proto, "TCP" | "UDP" | "SCTP")
            {
                self.err(
                    format!("{pf}.protocol"),
                    format!(
                        "Unsupported value: {proto:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                    ),
                );
            }
            if let Some(n) = &p.name {
                let valid = !n.is_empty()
                    && n.len() <= 15
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && n.bytes().any(|b| b.is_ascii_lowercase())
                    && !n.starts_with('-')
                    && !n.ends_with('-')
                    && !n.contains("--");
                if !valid {
                    self.push(field::invalid(format!("{pf}.name"), &n, "must be no more than 15 characters, contain only lowercase letters, digits and '-', and contain at least one letter"));
                } else if !port_names.insert(n.clone()) {
                    self.push(field::duplicate(format!("{pf}.name"), &n));
                }
            }
            if let Some(host_port) = p.host_port {
                self.host_port(p, host_port, &pf);
            } else if p.host_ip.is_some() {
                self.err(
                    format!("{pf}.hostIP"),
                    "Invalid value: hostIP needs a hostPort",
                );
            }
        }

        // Resources.
        let resources = c
            .resources
            .as_ref()
            .map(|r| self.resources(r, field))
            .unwrap_or_default();
        if resources.limits.memory == Some(0) {
            self.err(
                format!("{field}.resources.limits[memory]"),
                "Invalid value: \"0\": must be greater than 0",
            );
        }
        let memory_limit = resources.limits.memory.filter(|&m| m != 0);

        // Mounts.
        let mut mounts = Vec::new();
        let mut paths = HashSet::new();
        for (i, m) in c.volume_mounts.iter().enumerate() {
            let mf = format!("{field}.volumeMounts[{i}]");
            let volume = match volume_index.get(&m.name) {
                Some(&v) => Some(v),
                None if m.name.is_empty() => {
                    self.push(field::required(format!("{mf}.name"), ""));
                    None
                }
                None => {
                    self.err(format!("{mf}.name"), format!("Not found: {:?}", m.name));
                    None
                }
            };
            if m.mount_path.is_empty() {
                self.push(field::required(format!("{mf}.mountPath"), ""));
            } else if !m.mount_path.starts_with('/') {
                self.err(
                    format!("{mf}.mountPath"),
                    format!(
                        "Invalid value: {:?}: must be an absolute path in the guest",
                        m.mount_path
                    ),
                );
            } else if Path::new(&m.mount_path)
                .components()
                .any(|c| c == Component::ParentDir)
            {
                self.err(
                    format!("{mf}.mountPath"),
                    format!("Invalid value: {:?}: must not contain '..'", m.mount_path),
                );
            } else if !paths.insert(m.mount_path.trim_end_matches('/').to_string()) {
                self.err(
                    format!("{mf}.mountPath"),
                    format!("Invalid value: {:?}: must be unique", m.mount_path),
                );
            }
            if let Some(sp) = &m.sub_path
                && !sp.is_empty()
                && !is_relative_clean(sp)
            {
                self.push(field::invalid(
                    format!("{mf}.subPath"),
                    &sp,
                    "must be a relative path without '..'",
                ));
            }
            self.ignored(
                &format!("{mf}.mountPropagation"),
                m.mount_propagation.is_some(),
                "guests cannot mount anything",
            );
            if let Some(v) = volume {
                let files = matches!(volumes[v].source, VolumeSource::Files { .. });
                if files && m.read_only == Some(false) {
                    self.warnings.push(format!(
                        "{mf}.readOnly: configMap and secret volumes are always mounted read-only"
                    ));
                }
                mounts.push(MountSpec {
                    volume: v,
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only == Some(true) || files,
                    sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
                    field: mf,
                });
            }
        }
        let mut working_dir_mount = None;
        if let Some(wd) = &c.working_dir {
            if !wd.starts_with('/')
                || Path::new(wd)
                    .components()
                    .any(|c| c == Component::ParentDir)
            {
                self.push(field::invalid(
                    format!("{field}.workingDir"),
                    &wd,
                    "must be an absolute path without '..'",
                ));
            } else {
                // The deepest mount that holds the working directory.
                working_dir_mount = mounts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        Path::new(wd).strip_prefix(&m.mount_path).ok().map(|rest| {
                            (i, m.mount_path.len(), rest.to_string_lossy().into_owned())
                        })
                    })
                    .max_by_key(|(_, len, _)| *len)
                    .map(|(i, _, rest)| (i, rest));
            }
        }

        // Environment: envFrom first, then env (later entries win);
        // `$(VAR)` is expanded at start (ContainerSpec::resolve).
        let mut env: Vec<(String, EnvValue)> = Vec::new();
        let set = |env: &mut Vec<(String, EnvValue)>, k: String, v: EnvValue| {
            if let Some(slot) = env.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = v;
            } else {
                env.push((k, v));
            }
        };
        for (i, from) in c.env_from.iter().enumerate() {
            let ef = format!("{field}.envFrom[{i}]");
            let prefix = from.prefix.clone().unwrap_or_default();
            let (kind, r, data) = match (&from.config_map_ref, &from.secret_ref) {
                (Some(r), None) => (
                    "ConfigMap",
                    r,
                    self.config_map_data(&r.name)
                        .map(|m| m.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()),
                ),
                (None, Some(r)) => ("Secret", r, self.secret_data(&r.name)),
                _ => {
                    self.err(
                        ef,
                        "Invalid value: must specify exactly one of configMapRef and secretRef",
                    );
                    continue;
                }
            };
            let data: Option<BTreeMap<String, Vec<u8>>> = data;
            match data {
                Some(d) => {
                    for (k, v) in d {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            EnvValue::Fixed(String::from_utf8_lossy(&v).into_owned()),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => self.err(
                    format!(
                        "{ef}.{}.name",
                        if kind == "Secret" {
                            "secretRef"
                        } else {
                            "configMapRef"
                        }
                    ),
                    format!(
                        "Not found: {:?}: no {kind} of that name in this file",
                        r.name
                    ),
                ),
            }
        }
        for (i, e) in c.env.iter().enumerate() {
            let ef = format!("{field}.env[{i}]");
            if e.name.is_empty() {
                self.push(field::required(format!("{ef}.name"), ""));
                continue;
            }
            if e.name.contains('=') || !e.name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                self.err(
                    format!("{ef}.name"),
                    format!("Invalid value: {:?}: a valid environment variable name must consist only of printable ASCII characters other than '='", e.name),
                );
                continue;
            }
            let value = match (&e.value, &e.value_from) {
                (Some(_), Some(_)) => {
                    self.err(
                        format!("{ef}.valueFrom"),
                        "Invalid value: may not be specified when `value` is not empty",
                    );
                    continue;
                }
                (v, None) => EnvValue::Text(v.clone().unwrap_or_default()),
                (None, Some(src)) => {
                    match self.env_source(src, &format!("{ef}.valueFrom"), &c.name, pod) {
                        Some(v) => v,
                        None => continue,
                    }
                }
            };
            set(&mut env, e.name.clone(), value);
        }
        let mut argv: Vec<String> = c.command.iter().chain(&c.args).cloned().collect();
        if c.command.is_empty() {
            let program = image_ref
                .as_ref()
                .and_then(|r| r.path().file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| c.name.clone());
            argv.insert(0, program);
        }

        if self.errors.len() > start_errors {
            return None;
        }
        let spec = ContainerSpec {
            name: c.name.clone(),
            kind,
            field: field.to_string(),
            image_path: image_ref.as_ref()?.path().to_path_buf(),
            image_ref: image_ref?,
            image: c.image.clone(),
            args: argv,
            env,
            working_dir: c.working_dir.clone(),
            mounts,
            memory_limit,
            resources,
            termination_message_path,
            termination_message_policy,
            working_dir_mount,
            read_only_root: c
                .security_context
                .as_ref()
                .and_then(|sc| sc.read_only_root_filesystem)
                == Some(true),
            startup_probe,
            liveness_probe,
            readiness_probe,
            post_start,
            pre_stop,
            sidecar,
        };
        // The longest pod IP text (IPv6) stands in for the real address.
        if let Err(e) = spec.resolve("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
            self.err(
                format!("{field}.{}", e.field),
                format!(
                    "Invalid value: {:?}: argv and environment expand to more than {MAX_EXPANDED_BYTES} bytes",
                    e.item
                ),
            );
            return None;
        }
        Some(spec)
    }

    /// `terminationMessagePath` (absolute, clean; under `/dev` only the
    /// default, the one file there a guest can write) and
    /// `terminationMessagePolicy`, with Kubernetes' defaults.
    fn termination_message(
        &mut self,
        c: &manifest::Container,
        field: &str,
    ) -> (String, TerminationMessagePolicy) {
        let default = DEFAULT_TERMINATION_MESSAGE_PATH;
        let path = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| default.into());
        let f = format!("{field}.terminationMessagePath");
        if !path.starts_with('/')
            || Path::new(&path)
                .components()
                .any(|c| c == Component::ParentDir)
        {
            self.push(field::invalid(
                f,
                &path,
                "must be an absolute path without '..'",
            ));
        } else if path != default && (path.starts_with("/dev/") || path.starts_with("/etc/")) {
            self.push(field::invalid(
                f,
                &path,
                "/dev and /etc are read-only in a wasipod guest; use the default /dev/termination-log or a path in the root or a volume",
            ));
        }
        let policy = match c.termination_message_policy.as_deref() {
            None | Some("File") => TerminationMessagePolicy::File,
            Some("FallbackToLogsOnError") => TerminationMessagePolicy::FallbackToLogsOnError,
            Some(other) => {
                self.err(
                    format!("{field}.terminationMessagePolicy"),
                    format!("Unsupported value: {other:?}: supported values: \"File\", \"FallbackToLogsOnError\""),
                );
                TerminationMessagePolicy::File
            }
        };
        (path, policy)
    }
}
