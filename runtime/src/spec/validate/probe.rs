//! Probes and lifecycle hooks.

use std::time::Duration;

use super::*;

impl Validator<'_> {
    pub(super) fn probe(
        &mut self,
        p: &manifest::Probe,
        field: &str,
        ports: &[(Option<String>, i64)],
        single_success: bool,
    ) -> Option<ProbeSpec> {
        let action = self.action(
            &p.exec,
            &p.http_get,
            &p.tcp_socket,
            &None,
            p.grpc.as_ref(),
            field,
            ports,
        );
        // Kubernetes' probe fields are int32 (terminationGracePeriodSeconds
        // is int64): a larger number is refused, never truncated.
        let mut seconds = |name: &str, v: Option<i64>, default: i64, min: i64, max: i64| -> u64 {
            match v {
                None => default as u64,
                Some(v) if (min..=max).contains(&v) => v as u64,
                Some(v) if v < min => {
                    self.errors.push(FieldError::new(
                        format!("{field}.{name}"),
                        format!("Invalid value: {v}: must be greater than or equal to {min}"),
                    ));
                    default as u64
                }
                Some(v) => {
                    self.errors.push(FieldError::new(
                        format!("{field}.{name}"),
                        format!("Invalid value: {v}: must be between {min} and {max}, inclusive"),
                    ));
                    default as u64
                }
            }
        };
        let int32 = i64::from(i32::MAX);
        let initial_delay = seconds("initialDelaySeconds", p.initial_delay_seconds, 0, 0, int32);
        let period = seconds("periodSeconds", p.period_seconds, 10, 1, int32);
        let timeout = seconds("timeoutSeconds", p.timeout_seconds, 1, 1, int32);
        let success_threshold = seconds("successThreshold", p.success_threshold, 1, 1, int32);
        let failure_threshold = seconds("failureThreshold", p.failure_threshold, 3, 1, int32);
        let grace = p
            .termination_grace_period_seconds
            .map(|g| seconds("terminationGracePeriodSeconds", Some(g), 0, 1, i64::MAX));
        if single_success && success_threshold != 1 {
            self.err(
                format!("{field}.successThreshold"),
                "Invalid value: must be 1",
            );
        }
        Some(ProbeSpec {
            action: action?,
            initial_delay: Duration::from_secs(initial_delay),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(timeout),
            success_threshold: success_threshold as u32,
            failure_threshold: failure_threshold as u32,
            grace: grace.map(Duration::from_secs),
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one validator step per field group; the arguments are the fields it reads"
    )]
    pub(super) fn action(
        &mut self,
        exec: &Option<manifest::ExecAction>,
        http: &Option<manifest::HttpGetAction>,
        tcp: &Option<manifest::TcpSocketAction>,
        sleep: &Option<manifest::SleepAction>,
        grpc: Option<&manifest::GrpcAction>,
        field: &str,
        ports: &[(Option<String>, i64)],
    ) -> Option<Action> {
        let count = [
            exec.is_some(),
            http.is_some(),
            tcp.is_some(),
            sleep.is_some(),
            grpc.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            self.err(field, "Required value: must specify exactly one handler (exec, httpGet, tcpSocket, grpc or sleep)");
            return None;
        }
        if let Some(g) = grpc {
            let f = format!("{field}.grpc.port");
            return match u16::try_from(g.port) {
                Ok(port) if port > 0 => Some(Action::Grpc {
                    port,
                    service: g.service.clone().unwrap_or_default(),
                }),
                _ => {
                    self.err(
                        f,
                        format!(
                            "Invalid value: {}: must be between 1 and 65535, inclusive",
                            g.port
                        ),
                    );
                    None
                }
            };
        }
        let mut port = |p: &manifest::IntOrString, f: String| -> Option<u16> {
            match p {
                manifest::IntOrString::Int(n) => match u16::try_from(*n) {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        self.err(
                            f,
                            format!("Invalid value: {n}: must be between 1 and 65535, inclusive"),
                        );
                        None
                    }
                },
                manifest::IntOrString::String(name) => {
                    match ports
                        .iter()
                        .find(|(n, _)| n.as_deref() == Some(name.as_str()))
                    {
                        Some((_, number)) => u16::try_from(*number).ok(),
                        None => {
                            self.push(field::invalid(f, &name, "no container port of that name"));
                            None
                        }
                    }
                }
            }
        };
        if let Some(e) = exec {
            if e.command.is_empty() {
                self.push(field::required(format!("{field}.exec.command"), ""));
                return None;
            }
            return Some(Action::Exec(e.command.clone()));
        }
        if let Some(h) = http {
            if let Some(scheme) = h.scheme.as_deref()
                && scheme != "HTTP"
            {
                self.err(
                    format!("{field}.httpGet.scheme"),
                    format!("Unsupported value: {scheme:?}: supported values: \"HTTP\" (TLS probes are not supported by wasipod)"),
                );
                return None;
            }
            let port = port(&h.port, format!("{field}.httpGet.port"))?;
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            return Some(Action::HttpGet {
                port,
                path: if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                },
                host: h.host.clone(),
                headers: h
                    .http_headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            });
        }
        if let Some(t) = tcp {
            return Some(Action::TcpSocket {
                port: port(&t.port, format!("{field}.tcpSocket.port"))?,
            });
        }
        if let Some(s) = sleep {
            if s.seconds < 0 {
                self.err(
                    format!("{field}.sleep.seconds"),
                    "Invalid value: must be greater than or equal to 0",
                );
                return None;
            }
            return Some(Action::Sleep(Duration::from_secs(s.seconds as u64)));
        }
        None
    }
}
