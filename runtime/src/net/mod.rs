//! The pod network: a virtual loopback per pod and a flat network of pod
//! IPs, carried in memory.
//!
//! wasip2 guests use plain `std::net`: wasi-libc calls `wasi:sockets`, which
//! wasipod implements itself (`tcp`, `lookup`); wasmtime-wasi provides
//! every other interface. No host socket is opened for any of it.
//!
//! - `127.0.0.0/8` and `::1` are the pod's own loopback: private to the pod,
//!   so two pods can both listen on port 8080.
//! - Each pod has an IP from the runtime's range (default `10.88.0.0/16`);
//!   a container reaches a listener of another pod at that pod's IP.
//! - Binding to `0.0.0.0` or `::` listens on every address of the pod.
//! - Connecting anywhere else fails at once, unless the pod opts in to
//!   outbound access for that address ([`OutboundRule`]); the network's
//!   gateway address (`10.88.0.1` by default, name `host.wasipod.internal`)
//!   then stands for the host's own loopback.
//! - Ports can be published on the host ([`PortMapping`]).
//! - UDP is not supported: creating a UDP socket fails with `not-supported`.

pub(crate) mod bridge;
mod host;
pub(crate) mod lookup;
pub(crate) mod pipe;
pub(crate) mod tcp;

use crate::sync::lock;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

use crate::error::RuntimeError;
use pipe::Pipe;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasipod:net/pod-sockets",
        imports: { default: trappable },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/udp": wasmtime_wasi::p2::bindings::sockets::udp,
            "wasi:sockets/tcp.tcp-socket": super::tcp::TcpSocket,
            "wasi:sockets/ip-name-lookup.resolve-address-stream": super::lookup::ResolveAddressStream,
        },
    });
}

pub(crate) use bindings::wasi::sockets as wit;

pub use crate::spec::network::{OUTBOUND_ANNOTATION, OutboundRule, PortMapping};
pub use host::HostNetns;

/// Limits that keep one pod from exhausting the host.
#[derive(Debug, Clone, Copy)]
pub struct NetLimits {
    /// Sockets a pod may hold open at once.
    pub max_sockets: usize,
    /// Bytes buffered per direction of a connection (backpressure beyond).
    pub buffer_bytes: usize,
    /// Largest accept backlog a listener may ask for.
    pub max_backlog: usize,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_sockets: 4096,
            buffer_bytes: 256 * 1024,
            max_backlog: 4096,
        }
    }
}

/// The network of one runtime: pod IPs and who has them.
pub(crate) struct Network {
    base: u32,
    size: u32,
    limits: NetLimits,
    inner: Mutex<NetInner>,
}

struct NetInner {
    next: u32,
    pods: HashMap<Ipv4Addr, Weak<PodNet>>,
}

impl Network {
    /// A network over `cidr` (e.g. `10.88.0.0/16`). The first address is the
    /// network, the second the gateway; pods get the ones after.
    pub(crate) fn new(cidr: &str, limits: NetLimits) -> Result<Arc<Self>, RuntimeError> {
        let bad = |why: &str| RuntimeError::Engine(format!("pod network range {cidr:?}: {why}"));
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u32 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Arc::new(Network {
            base: u32::from(ip) & mask,
            size: 1 << (32 - prefix),
            limits,
            inner: Mutex::new(NetInner {
                next: 2,
                pods: HashMap::new(),
            }),
        }))
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// `ADDRESS/PREFIX`.
    fn cidr(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base),
            32 - self.size.trailing_zeros()
        )
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip).wrapping_sub(self.base) < self.size
    }

    /// Gives a pod an address.
    pub(crate) fn attach(
        self: &Arc<Self>,
        hostname: &str,
        outbound: Vec<OutboundRule>,
        host: Option<HostNetns>,
    ) -> Result<Arc<PodNet>, RuntimeError> {
        let mut inner = lock(&self.inner);
        let usable = self.size - 3;
        for _ in 0..usable {
            let offset = inner.next;
            inner.next = if inner.next + 1 >= self.size - 1 {
                2
            } else {
                inner.next + 1
            };
            let ip = Ipv4Addr::from(self.base + offset);
            if inner.pods.get(&ip).is_some_and(|p| p.strong_count() > 0) {
                continue;
            }
            let pod = Arc::new(PodNet {
                ip,
                hostname: hostname.to_string(),
                network: Arc::downgrade(self),
                limits: self.limits,
                ports: Mutex::new(Ports::default()),
                sockets: AtomicUsize::new(0),
                outbound,
                host: host.clone(),
                gateway: self.gateway(),
                stop: CancellationToken::new(),
            });
            inner.pods.insert(ip, Arc::downgrade(&pod));
            return Ok(pod);
        }
        Err(RuntimeError::Exhausted {
            message: format!("the pod network {} has no free address left", self.cidr()),
        })
    }

    fn pod(&self, ip: Ipv4Addr) -> Option<Arc<PodNet>> {
        lock(&self.inner).pods.get(&ip).and_then(Weak::upgrade)
    }

    /// The pod whose hostname is `name`.
    fn by_hostname(&self, name: &str) -> Option<Arc<PodNet>> {
        let inner = lock(&self.inner);
        inner
            .pods
            .values()
            .filter_map(Weak::upgrade)
            .find(|p| p.hostname == name)
    }
}

#[derive(Default)]
struct Ports {
    bound: HashSet<SocketAddr>,
    listeners: HashMap<SocketAddr, Arc<Listener>>,
    /// Ends the mirror of each listener in the host namespace.
    mirrors: HashMap<SocketAddr, CancellationToken>,
    next_ephemeral: u16,
}

/// One pod's side of the network: its address, ports and listeners.
pub(crate) struct PodNet {
    /// The pod IP.
    pub(crate) ip: Ipv4Addr,
    hostname: String,
    network: Weak<Network>,
    limits: NetLimits,
    ports: Mutex<Ports>,
    sockets: AtomicUsize,
    outbound: Vec<OutboundRule>,
    /// The host namespace its listeners are mirrored into and its outbound
    /// connections leave from (see [`HostNetns`]); `None`: outbound
    /// connections leave from this process's, and nothing is mirrored.
    host: Option<HostNetns>,
    gateway: Ipv4Addr,
    /// Ends the pod's host-side tasks (published ports, outbound connections).
    pub(crate) stop: CancellationToken,
}

impl Drop for PodNet {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(net) = self.network.upgrade() {
            let mut inner = lock(&net.inner);
            if inner
                .pods
                .get(&self.ip)
                .is_some_and(|p| p.strong_count() == 0)
            {
                inner.pods.remove(&self.ip);
            }
        }
    }
}

/// A connection waiting in a listener's queue.
pub(crate) struct Pending {
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
    /// Client → server bytes.
    pub inbound: Arc<Pipe>,
    /// Server → client bytes.
    pub outbound: Arc<Pipe>,
}

/// A listening socket's accept queue.
pub(crate) struct Listener {
    queue: Mutex<VecDeque<Pending>>,
    backlog: usize,
    ready: Notify,
}

impl Listener {
    pub(crate) fn pop(&self) -> Option<Pending> {
        lock(&self.queue).pop_front()
    }

    pub(crate) async fn ready(&self) {
        loop {
            let notified = self.ready.notified();
            if !lock(&self.queue).is_empty() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Connections nobody accepted are reset.
        for p in self
            .queue
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            p.inbound.close_read();
            p.outbound.close_write();
        }
    }
}

fn unspecified_for(ip: IpAddr) -> [IpAddr; 2] {
    // Like Linux with bindv6only=0: `::` also covers IPv4.
    match ip {
        IpAddr::V4(_) => [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ],
        IpAddr::V6(_) => [
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ],
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl PodNet {
    pub(crate) fn limits(&self) -> NetLimits {
        self.limits
    }

    /// Counts a new socket against the pod's limit.
    pub(crate) fn open_socket(self: &Arc<Self>) -> Result<SocketSlot, ErrorCode> {
        let n = self.sockets.fetch_add(1, Ordering::Relaxed);
        if n >= self.limits.max_sockets {
            self.sockets.fetch_sub(1, Ordering::Relaxed);
            return Err(ErrorCode::NewSocketLimit);
        }
        Ok(SocketSlot(self.clone()))
    }

    /// Whether `ip` is one of this pod's addresses.
    fn owns(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => v4.is_loopback() || v4 == self.ip,
            IpAddr::V6(v6) => v6.is_loopback(),
        }
    }

    /// Reserves a local address (port 0 picks a free ephemeral port).
    pub(crate) fn bind(&self, addr: SocketAddr) -> Result<SocketAddr, ErrorCode> {
        let ip = addr.ip();
        if !ip.is_unspecified() && !self.owns(ip) {
            return Err(ErrorCode::AddressNotBindable);
        }
        let mut ports = lock(&self.ports);
        let in_use = |ports: &Ports, port: u16| {
            ports.bound.iter().any(|b| {
                b.port() == port && (b.ip() == ip || b.ip().is_unspecified() || ip.is_unspecified())
            })
        };
        let port = if addr.port() != 0 {
            if in_use(&ports, addr.port()) {
                return Err(ErrorCode::AddressInUse);
            }
            addr.port()
        } else {
            // The Linux ephemeral range.
            let (low, high) = (32768u16, 60999u16);
            let span = high - low + 1;
            let mut found = None;
            for i in 0..span {
                let candidate = low + (ports.next_ephemeral.wrapping_add(i)) % span;
                if !in_use(&ports, candidate) {
                    ports.next_ephemeral = candidate - low + 1;
                    found = Some(candidate);
                    break;
                }
            }
            found.ok_or(ErrorCode::AddressInUse)?
        };
        let bound = SocketAddr::new(ip, port);
        ports.bound.insert(bound);
        Ok(bound)
    }

    pub(crate) fn unbind(&self, addr: SocketAddr) {
        let mut ports = lock(&self.ports);
        ports.bound.remove(&addr);
        ports.listeners.remove(&addr);
        if let Some(mirror) = ports.mirrors.remove(&addr) {
            mirror.cancel();
        }
    }

    pub(crate) fn listen(self: &Arc<Self>, addr: SocketAddr, backlog: usize) -> Arc<Listener> {
        let listener = Arc::new(Listener {
            queue: Mutex::new(VecDeque::new()),
            backlog: backlog.clamp(1, self.limits.max_backlog),
            ready: Notify::new(),
        });
        let mut ports = lock(&self.ports);
        ports.listeners.insert(addr, listener.clone());
        if let Some(host) = &self.host {
            let stop = self.stop.child_token();
            ports.mirrors.insert(addr, stop.clone());
            drop(ports);
            self.mirror(host, addr, stop);
        }
        listener
    }

    /// Listens on the guest listener's port in the host namespace and
    /// forwards what arrives to it, until `stop`. In this process's
    /// namespace the port is bound before the guest's listen returns; in
    /// another, on a thread that entered it, in the background.
    fn mirror(self: &Arc<Self>, host: &HostNetns, addr: SocketAddr, stop: CancellationToken) {
        /// How long a mirror waits for its port held by another.
        const MIRROR_BIND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
        let at = host::mirror_address(addr);
        let target = if addr.ip().is_unspecified() {
            SocketAddr::new(self.ip.into(), addr.port())
        } else {
            addr
        };
        let pod = Arc::downgrade(self);
        let serve = move |bound: std::io::Result<std::net::TcpListener>| match bound
            .and_then(tokio::net::TcpListener::from_std)
        {
            Ok(l) => {
                tokio::spawn(bridge::publish(pod, l, target, stop));
            }
            Err(e) => {
                tracing::warn!(address = %at, error = %e, "cannot mirror a guest's listener in the host namespace");
            }
        };
        // The mirror of a container that just ended may hold the port a
        // moment longer (a restart on the same port): binding is retried
        // for a while.
        let retrying = move |host: HostNetns| {
            let deadline = std::time::Instant::now() + MIRROR_BIND_PATIENCE;
            loop {
                match host.bind(at) {
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AddrInUse
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    bound => return bound,
                }
            }
        };
        let first = match host {
            HostNetns::Current => Some(host.bind(at)),
            HostNetns::Path(_) => None,
        };
        match first {
            Some(Err(e)) if e.kind() != std::io::ErrorKind::AddrInUse => serve(Err(e)),
            Some(Ok(l)) => serve(Ok(l)),
            _ => {
                let host = host.clone();
                tokio::spawn(async move {
                    let bound = tokio::task::spawn_blocking(move || retrying(host))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    serve(bound);
                });
            }
        }
    }

    fn listener_for(&self, target: SocketAddr) -> Option<Arc<Listener>> {
        let ports = lock(&self.ports);
        let exact = ports.listeners.get(&target).or_else(|| {
            // A v4-mapped target also matches a listener on the v4 address.
            let c = SocketAddr::new(canonical(target.ip()), target.port());
            ports.listeners.get(&c)
        });
        exact
            .or_else(|| {
                unspecified_for(canonical(target.ip()))
                    .iter()
                    .find_map(|any| ports.listeners.get(&SocketAddr::new(*any, target.port())))
            })
            .cloned()
    }

    /// The network's gateway address (the host, for outbound rules).
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Where a connection from this pod to `remote` goes.
    pub(crate) fn route(self: &Arc<Self>, remote: SocketAddr) -> Result<Route, ErrorCode> {
        let ip = canonical(remote.ip());
        if ip.is_unspecified() || remote.port() == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let v4 = match ip {
            _ if ip.is_loopback() => return Ok(Route::Pod(self.clone())),
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => return Err(ErrorCode::RemoteUnreachable),
        };
        if v4 == self.ip {
            return Ok(Route::Pod(self.clone()));
        }
        let net = self.network.upgrade().ok_or(ErrorCode::RemoteUnreachable)?;
        if let Some(pod) = net.pod(v4) {
            return Ok(Route::Pod(pod));
        }
        if self
            .outbound
            .iter()
            .any(|r| r.allows(v4, remote.port(), self.gateway))
        {
            // The gateway stands for the host's own loopback.
            let real = if v4 == self.gateway {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), remote.port())
            } else {
                remote
            };
            return Ok(Route::Host(real));
        }
        if net.contains(v4) {
            // A free address of the pod network: nobody answers.
            return Err(ErrorCode::ConnectionRefused);
        }
        // Outside the pod network, and outbound access is off.
        Err(ErrorCode::RemoteUnreachable)
    }

    /// Connects from this pod to `remote` inside the pod network. Returns the
    /// local address used and the connection as the client sees it
    /// (inbound, outbound).
    pub(crate) fn connect_local(
        self: &Arc<Self>,
        target: &Arc<PodNet>,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, Arc<Pipe>, Arc<Pipe>), ErrorCode> {
        let ip = canonical(remote.ip());
        let local_ip = if ip.is_loopback() {
            ip
        } else {
            IpAddr::V4(self.ip)
        };
        let local = self.bind(SocketAddr::new(local_ip, 0))?;
        match target.enqueue(remote, local) {
            Ok((to_server, to_client)) => Ok((local, to_client, to_server)),
            Err(e) => {
                self.unbind(local);
                Err(e)
            }
        }
    }

    /// Puts a connection from `remote` into the queue of this pod's listener
    /// for `target`. Returns (bytes to the listener, bytes from it).
    pub(crate) fn enqueue(
        &self,
        target: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(Arc<Pipe>, Arc<Pipe>), ErrorCode> {
        let listener = self
            .listener_for(target)
            .ok_or(ErrorCode::ConnectionRefused)?;
        let mut queue = lock(&listener.queue);
        if queue.len() >= listener.backlog {
            return Err(ErrorCode::ConnectionRefused);
        }
        let to_server = Pipe::new(self.limits.buffer_bytes);
        let to_client = Pipe::new(self.limits.buffer_bytes);
        queue.push_back(Pending {
            local: target,
            remote,
            inbound: to_server.clone(),
            outbound: to_client.clone(),
        });
        drop(queue);
        listener.ready.notify_waiters();
        Ok((to_server, to_client))
    }

    /// The addresses `name` stands for in this pod.
    pub(crate) fn resolve(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Some(vec![ip]);
        }
        if name == "host.wasipod.internal" {
            return Some(vec![IpAddr::V4(self.gateway)]);
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Some(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        if name == self.hostname {
            return Some(vec![IpAddr::V4(self.ip)]);
        }
        let net = self.network.upgrade()?;
        net.by_hostname(&name).map(|p| vec![IpAddr::V4(p.ip)])
    }
}

/// Where a connection goes.
pub(crate) enum Route {
    /// A pod of this runtime (possibly the same one).
    Pod(Arc<PodNet>),
    /// A host address, allowed by an outbound rule.
    Host(SocketAddr),
}

/// A socket counted against its pod's limit; released on drop.
pub(crate) struct SocketSlot(Arc<PodNet>);

impl SocketSlot {
    pub(crate) fn pod(&self) -> &Arc<PodNet> {
        &self.0
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.sockets.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the socket host functions need from a guest's store.
pub(crate) struct NetView<'a> {
    pub table: &'a mut ResourceTable,
    pub pod: &'a Arc<PodNet>,
}

// `tcp` uses the types of wasi:sockets/network, so its host needs this
// interface's functions too (same behaviour as wasmtime-wasi's).
impl wasmtime_wasi::p2::bindings::sockets::network::Host for NetView<'_> {
    fn convert_error_code(
        &mut self,
        error: wasmtime_wasi::p2::SocketError,
    ) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        err: wasmtime::component::Resource<wasmtime_wasi::p2::IoError>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl wasmtime_wasi::p2::bindings::sockets::network::HostNetwork for NetView<'_> {
    fn drop(
        &mut self,
        this: wasmtime::component::Resource<wasmtime_wasi::p2::Network>,
    ) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

struct NetData;

impl HasData for NetData {
    type Data<'a> = NetView<'a>;
}

/// Adds wasipod's `wasi:sockets` interfaces (they replace wasmtime-wasi's,
/// so the linker must allow shadowing).
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> NetView<'_>,
) -> wasmtime::Result<()> {
    wit::tcp::add_to_linker::<T, NetData>(linker, get)?;
    wit::tcp_create_socket::add_to_linker::<T, NetData>(linker, get)?;
    wit::udp_create_socket::add_to_linker::<T, NetData>(linker, get)?;
    wit::ip_name_lookup::add_to_linker::<T, NetData>(linker, get)?;
    Ok(())
}
