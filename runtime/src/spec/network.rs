//! What a pod asks of the network, parsed and checked (no sockets here):
//! published ports and outbound rules. The pod network itself is
//! [`crate::net`].

use std::net::{IpAddr, Ipv4Addr};

/// A pod port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Host address to listen on.
    pub host_ip: IpAddr,
    /// Host port.
    pub host_port: u16,
    /// The pod's port the connections go to.
    pub container_port: u16,
    /// Where it was asked for (`spec.containers[0].ports[1].hostPort`, `--publish`).
    pub source: String,
}

impl PortMapping {
    /// Parses `[HOST_IP:]HOST_PORT:CONTAINER_PORT` (host IP 127.0.0.1 by default).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?}: expected [HOST_IP:]HOST_PORT:CONTAINER_PORT");
        let (rest, container) = text.rsplit_once(':').ok_or_else(bad)?;
        let (host_ip, host_port) = match rest.rsplit_once(':') {
            Some((ip, port)) => (
                ip.trim_matches(['[', ']']).parse().map_err(|_| bad())?,
                port,
            ),
            None => (IpAddr::V4(Ipv4Addr::LOCALHOST), rest),
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
        Ok(PortMapping {
            host_ip,
            host_port: port(host_port)?,
            container_port: port(container)?,
            source: "--publish".into(),
        })
    }
}

/// An address range a pod may connect to outside the pod network, from the
/// `wasipod.io/outbound` annotation: comma-separated `CIDR[:PORT]` entries,
/// where `host` stands for the gateway (the host's loopback), e.g.
/// `host:8080, 192.0.2.0/24:443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// Network address.
    pub net: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Only this port, when given.
    pub port: Option<u16>,
    /// `host`: the gateway, i.e. the host's loopback.
    pub host: bool,
}

/// The annotation that lists a pod's [`OutboundRule`]s.
pub const OUTBOUND_ANNOTATION: &str = "wasipod.io/outbound";

impl OutboundRule {
    /// Parses the annotation's value.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Self::parse)
            .collect()
    }

    fn parse(entry: &str) -> Result<Self, String> {
        let bad = || format!("{entry:?}: expected CIDR[:PORT] or host[:PORT] (IPv4)");
        let (addr, port) = match entry.rsplit_once(':') {
            Some((a, p)) => (a, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (entry, None),
        };
        if addr == "host" {
            return Ok(OutboundRule {
                net: Ipv4Addr::UNSPECIFIED,
                prefix: 32,
                port,
                host: true,
            });
        }
        let (ip, prefix) = match addr.split_once('/') {
            Some((ip, p)) => (
                ip,
                p.parse::<u8>().ok().filter(|p| *p <= 32).ok_or_else(bad)?,
            ),
            None => (addr, 32),
        };
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        Ok(OutboundRule {
            net: ip,
            prefix,
            port,
            host: false,
        })
    }

    pub(crate) fn allows(&self, target: Ipv4Addr, port: u16, gateway: Ipv4Addr) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.host {
            return target == gateway;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(target) & mask == u32::from(self.net) & mask
    }
}
