//! `wasi:sockets/ip-name-lookup` inside the pod network: `localhost`, the
//! pod's own hostname, the hostnames of the runtime's other pods, and IP
//! literals. Nothing is asked of the host's resolver.

use std::net::IpAddr;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketResult};

use super::{NetView, wit};

/// The answers to one lookup, handed out one at a time.
pub struct ResolveAddressStream {
    addresses: std::vec::IntoIter<IpAddr>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {}
}

impl wit::ip_name_lookup::Host for NetView<'_> {
    fn resolve_addresses(
        &mut self,
        _network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        if name.is_empty() || name.len() > 253 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let addresses = self.pod.resolve(&name).ok_or(ErrorCode::NameUnresolvable)?;
        Ok(self.table.push(ResolveAddressStream {
            addresses: addresses.into_iter(),
        })?)
    }
}

impl wit::ip_name_lookup::HostResolveAddressStream for NetView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        Ok(self
            .table
            .get_mut(&this)?
            .addresses
            .next()
            .map(IpAddress::from))
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
