//! `wasi:sockets/tcp` and `tcp-create-socket` over the in-memory pod
//! network, following the socket state machine of the WASI 0.2 spec
//! (bind → listen → accept; connect; shutdown), and `udp-create-socket`,
//! which refuses UDP.

use crate::sync::lock;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, Pollable, SocketError, SocketResult, UdpSocket,
};

use super::bridge::splice;
use super::pipe::{Pipe, PipeReader, PipeWriter};
use super::wit::tcp::ShutdownType;
use super::{Listener, NetView, Route, SocketSlot, wit};

/// A connect to a host address (outbound access), made by a task.
struct Attempt {
    result: std::sync::Mutex<Option<Result<(), ErrorCode>>>,
    done: tokio::sync::Notify,
}

impl Attempt {
    fn finish(&self, result: Result<(), ErrorCode>) {
        *lock(&self.result) = Some(result);
        self.done.notify_waiters();
    }

    fn result(&self) -> Option<Result<(), ErrorCode>> {
        *lock(&self.result)
    }

    async fn wait(&self) {
        loop {
            let notified = self.done.notified();
            if self.result().is_some() {
                return;
            }
            notified.await;
        }
    }
}

enum Connecting {
    /// Inside the pod network: settled at once.
    Settled(Result<(Arc<Pipe>, Arc<Pipe>), ErrorCode>),
    /// Through a host socket.
    Outbound {
        attempt: Arc<Attempt>,
        inbound: Arc<Pipe>,
        outbound: Arc<Pipe>,
    },
}

enum State {
    Unbound,
    BindStarted,
    Bound,
    ListenStarted,
    Listening(Arc<Listener>),
    Connecting(Connecting),
    Connected {
        inbound: Arc<Pipe>,
        outbound: Arc<Pipe>,
    },
    Closed,
}

/// A guest's TCP socket.
pub struct TcpSocket {
    slot: SocketSlot,
    family: IpAddressFamily,
    state: State,
    /// The local address, once bound.
    local: Option<SocketAddr>,
    /// Whether this socket reserved `local` (accepted sockets share their
    /// listener's address).
    owns_local: bool,
    remote: Option<SocketAddr>,
    backlog: usize,
    keep_alive: bool,
    keep_alive_idle: u64,
    keep_alive_interval: u64,
    keep_alive_count: u32,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

impl TcpSocket {
    fn new(slot: SocketSlot, family: IpAddressFamily) -> Self {
        let buffer = slot.pod().limits().buffer_bytes as u64;
        TcpSocket {
            slot,
            family,
            state: State::Unbound,
            local: None,
            owns_local: false,
            remote: None,
            backlog: 128,
            keep_alive: false,
            keep_alive_idle: 7_200_000_000_000,
            keep_alive_interval: 75_000_000_000,
            keep_alive_count: 9,
            hop_limit: 64,
            receive_buffer: buffer,
            send_buffer: buffer,
        }
    }

    fn check_family(&self, addr: &SocketAddr) -> Result<(), ErrorCode> {
        match (self.family, addr) {
            (IpAddressFamily::Ipv4, SocketAddr::V4(_))
            | (IpAddressFamily::Ipv6, SocketAddr::V6(_)) => Ok(()),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        if let State::Connected { inbound, outbound } = &self.state {
            inbound.close_read();
            outbound.close_write();
        }
        if let (Some(local), true) = (self.local, self.owns_local) {
            self.slot.pod().unbind(local);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    async fn ready(&mut self) {
        match &self.state {
            State::Listening(l) => l.ready().await,
            State::Connecting(Connecting::Outbound { attempt, .. }) => attempt.wait().await,
            _ => {}
        }
    }
}

fn streams(
    table: &mut wasmtime::component::ResourceTable,
    inbound: &Arc<Pipe>,
    outbound: &Arc<Pipe>,
) -> wasmtime::Result<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
    let input: DynInputStream = Box::new(PipeReader(inbound.clone()));
    let output: DynOutputStream = Box::new(PipeWriter(outbound.clone()));
    Ok((table.push(input)?, table.push(output)?))
}

impl wit::tcp_create_socket::Host for NetView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let slot = self.pod.open_socket()?;
        Ok(self.table.push(TcpSocket::new(slot, family))?)
    }
}

impl wit::udp_create_socket::Host for NetView<'_> {
    fn create_udp_socket(&mut self, _family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        Err(ErrorCode::NotSupported.into())
    }
}

impl wit::tcp::Host for NetView<'_> {}

impl NetView<'_> {
    /// Reads a socket option.
    fn option<T>(
        &mut self,
        this: &Resource<TcpSocket>,
        get: fn(&TcpSocket) -> T,
    ) -> SocketResult<T> {
        Ok(get(self.table.get(this)?))
    }

    /// Sets a socket option that must not be zero (the spec's `invalid-argument`).
    fn set_nonzero<T: PartialEq + Default>(
        &mut self,
        this: &Resource<TcpSocket>,
        value: T,
        field: fn(&mut TcpSocket) -> &mut T,
    ) -> SocketResult<()> {
        if value == T::default() {
            return Err(ErrorCode::InvalidArgument.into());
        }
        *field(self.table.get_mut(this)?) = value;
        Ok(())
    }
}

impl wit::tcp::HostTcpSocket for NetView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        _network: Resource<Network>,
        local: IpSocketAddress,
    ) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        let addr = SocketAddr::from(local);
        s.check_family(&addr)?;
        if !matches!(s.state, State::Unbound) {
            return Err(ErrorCode::InvalidState.into());
        }
        let bound = s.slot.pod().bind(addr)?;
        s.local = Some(bound);
        s.owns_local = true;
        s.state = State::BindStarted;
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        match s.state {
            State::BindStarted => {
                s.state = State::Bound;
                Ok(())
            }
            _ => Err(ErrorCode::NotInProgress.into()),
        }
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        _network: Resource<Network>,
        remote: IpSocketAddress,
    ) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        let addr = SocketAddr::from(remote);
        s.check_family(&addr)?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        match s.state {
            State::Unbound | State::Bound => {}
            _ => return Err(ErrorCode::InvalidState.into()),
        }
        // A socket bound beforehand keeps its reservation; connect takes
        // its own local address below.
        if let (Some(local), true) = (s.local.take(), s.owns_local) {
            s.slot.pod().unbind(local);
        }
        let pod = s.slot.pod().clone();
        s.remote = Some(addr);
        let connecting = match pod.route(addr) {
            Err(code) => Connecting::Settled(Err(code)),
            Ok(Route::Pod(target)) => Connecting::Settled(pod.connect_local(&target, addr).map(
                |(local, inbound, outbound)| {
                    s.local = Some(local);
                    s.owns_local = true;
                    (inbound, outbound)
                },
            )),
            Ok(Route::Host(real)) => {
                let local = pod.bind(SocketAddr::new(pod.ip.into(), 0))?;
                s.local = Some(local);
                s.owns_local = true;
                let inbound = Pipe::new(pod.limits().buffer_bytes);
                let outbound = Pipe::new(pod.limits().buffer_bytes);
                let attempt = Arc::new(Attempt {
                    result: std::sync::Mutex::new(None),
                    done: tokio::sync::Notify::new(),
                });
                tokio::spawn(dial(
                    real,
                    pod.host.clone(),
                    attempt.clone(),
                    inbound.clone(),
                    outbound.clone(),
                    pod.stop.clone(),
                ));
                Connecting::Outbound {
                    attempt,
                    inbound,
                    outbound,
                }
            }
        };
        s.state = State::Connecting(connecting);
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let s = self.table.get_mut(&this)?;
        let result = match std::mem::replace(&mut s.state, State::Closed) {
            State::Connecting(Connecting::Settled(r)) => r,
            State::Connecting(Connecting::Outbound {
                attempt,
                inbound,
                outbound,
            }) => match attempt.result() {
                None => {
                    s.state = State::Connecting(Connecting::Outbound {
                        attempt,
                        inbound,
                        outbound,
                    });
                    return Err(ErrorCode::WouldBlock.into());
                }
                Some(r) => r.map(|()| (inbound, outbound)),
            },
            other => {
                s.state = other;
                return Err(ErrorCode::NotInProgress.into());
            }
        };
        match result {
            Ok((inbound, outbound)) => {
                s.state = State::Connected {
                    inbound: inbound.clone(),
                    outbound: outbound.clone(),
                };
                Ok(streams(self.table, &inbound, &outbound).map_err(SocketError::trap)?)
            }
            Err(code) => {
                s.remote = None;
                Err(code.into())
            }
        }
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        match s.state {
            State::Bound => {
                s.state = State::ListenStarted;
                Ok(())
            }
            State::Unbound | State::BindStarted => Err(ErrorCode::InvalidState.into()),
            State::ListenStarted | State::Listening(_) => Err(ErrorCode::InvalidState.into()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        match (&s.state, s.local) {
            (State::ListenStarted, Some(local)) => {
                let listener = s.slot.pod().listen(local, s.backlog);
                s.state = State::Listening(listener);
                Ok(())
            }
            _ => Err(ErrorCode::NotInProgress.into()),
        }
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let s = self.table.get_mut(&this)?;
        let State::Listening(listener) = &s.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let pending = listener.pop().ok_or(ErrorCode::WouldBlock)?;
        let slot = match s.slot.pod().open_socket() {
            Ok(slot) => slot,
            Err(code) => {
                // Refuse the connection rather than keep it half-open.
                pending.inbound.close_read();
                pending.outbound.close_write();
                return Err(code.into());
            }
        };
        let mut accepted = TcpSocket::new(slot, s.family);
        accepted.keep_alive = s.keep_alive;
        accepted.hop_limit = s.hop_limit;
        accepted.local = Some(pending.local);
        accepted.remote = Some(pending.remote);
        accepted.state = State::Connected {
            inbound: pending.inbound.clone(),
            outbound: pending.outbound.clone(),
        };
        let socket = self.table.push(accepted)?;
        let (input, output) =
            streams(self.table, &pending.inbound, &pending.outbound).map_err(SocketError::trap)?;
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let s = self.table.get(&this)?;
        match (&s.state, s.local) {
            (State::Unbound | State::BindStarted, _) | (_, None) => {
                Err(ErrorCode::InvalidState.into())
            }
            (_, Some(addr)) => Ok(addr.into()),
        }
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let s = self.table.get(&this)?;
        match (&s.state, s.remote) {
            (State::Connected { .. }, Some(addr)) => Ok(addr.into()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(matches!(self.table.get(&this)?.state, State::Listening(_)))
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        let s = self.table.get_mut(&this)?;
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if matches!(s.state, State::Connecting(_) | State::Connected { .. }) {
            return Err(ErrorCode::InvalidState.into());
        }
        s.backlog = usize::try_from(value)
            .unwrap_or(usize::MAX)
            .min(s.slot.pod().limits().max_backlog);
        Ok(())
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.option(&this, |s| s.keep_alive)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.option(&this, |s| s.keep_alive_idle)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.keep_alive_idle)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.option(&this, |s| s.keep_alive_interval)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.keep_alive_interval)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.option(&this, |s| s.keep_alive_count)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.keep_alive_count)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.option(&this, |s| s.hop_limit)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.hop_limit)
    }

    // Buffer sizes are recorded only: the pod's buffer limit is what applies.
    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.option(&this, |s| s.receive_buffer)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.receive_buffer)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.option(&this, |s| s.send_buffer)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.set_nonzero(&this, value, |s| &mut s.send_buffer)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let s = self.table.get(&this)?;
        let State::Connected { inbound, outbound } = &s.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
            inbound.close_read();
        }
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            outbound.close_write();
        }
        Ok(())
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Connects to a host address for a guest and, once connected, carries the
/// bytes until either side closes or the pod goes away.
async fn dial(
    real: SocketAddr,
    host: Option<super::HostNetns>,
    attempt: Arc<Attempt>,
    inbound: Arc<Pipe>,
    outbound: Arc<Pipe>,
    stop: tokio_util::sync::CancellationToken,
) {
    let connect =
        tokio::time::timeout(std::time::Duration::from_secs(30), connect_from(host, real));
    let result = tokio::select! {
        r = connect => r,
        _ = stop.cancelled() => {
            attempt.finish(Err(ErrorCode::ConnectionAborted));
            return;
        }
    };
    match result {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            attempt.finish(Ok(()));
            splice(stream, inbound, outbound, stop).await;
        }
        Ok(Err(e)) => attempt.finish(Err(ErrorCode::from(&e))),
        Err(_) => attempt.finish(Err(ErrorCode::Timeout)),
    }
}

/// Connects to `real` from the host namespace `host` (this process's when
/// `None`).
async fn connect_from(
    host: Option<super::HostNetns>,
    real: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match host {
        None | Some(super::HostNetns::Current) => {
            return tokio::net::TcpStream::connect(real).await;
        }
        // Entering another namespace takes a thread of its own.
        Some(ns) => tokio::task::spawn_blocking(move || ns.socket_for(real))
            .await
            .map_err(std::io::Error::other)??,
    };
    socket.connect(real).await
}
