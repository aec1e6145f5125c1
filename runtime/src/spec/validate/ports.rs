//! Host ports (published on the host).

use super::*;

impl Validator<'_> {
    pub(super) fn host_port(&mut self, p: &manifest::ContainerPort, host_port: i64, pf: &str) {
        let Ok(host_port) = u16::try_from(host_port)
            .map_err(|_| ())
            .and_then(|v| if v == 0 { Err(()) } else { Ok(v) })
        else {
            self.err(
                format!("{pf}.hostPort"),
                format!("Invalid value: {host_port}: must be between 1 and 65535, inclusive"),
            );
            return;
        };
        if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
            self.err(
                format!("{pf}.protocol"),
                "Unsupported value: only TCP ports can be published: the pod network carries TCP only",
            );
            return;
        }
        let host_ip = match p.host_ip.as_deref() {
            None | Some("") => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Some(ip) => match ip.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    self.push(field::invalid(
                        format!("{pf}.hostIP"),
                        &ip,
                        "must be a valid IP address",
                    ));
                    return;
                }
            },
        };
        if self.publish.iter().any(|m| {
            m.host_port == host_port
                && (m.host_ip == host_ip || m.host_ip.is_unspecified() || host_ip.is_unspecified())
        }) {
            self.err(
                format!("{pf}.hostPort"),
                format!("Duplicate value: \"{host_port}/TCP\""),
            );
            return;
        }
        let Ok(container_port) = u16::try_from(p.container_port) else {
            return;
        };
        self.publish.push(PortMapping {
            host_ip,
            host_port,
            container_port,
            source: format!("{pf}.hostPort"),
        });
    }
}
