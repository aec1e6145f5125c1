//! A pod attached to a real network namespace of the host — the pod
//! sandbox's namespace under Kubernetes, made by the CNI plugins, or the
//! host's own for `hostNetwork` pods.
//!
//! The pod keeps its in-memory network (its containers reach each other
//! over the virtual loopback and pod IP as always). On top of it:
//!
//! - every port a guest listens on is also listened on in the namespace
//!   (`0.0.0.0:P` for a listener on the wildcard or the pod IP,
//!   `127.0.0.1:P` for one on loopback), and each connection accepted there
//!   is spliced into the guest's listener: the kubelet's httpGet and
//!   tcpSocket probes, Services and CRI port-forward (which dials
//!   `localhost:P` inside the namespace) reach the guest;
//! - outbound connections the pod's rules allow leave from the namespace.
//!
//! A socket belongs to the namespace of the thread that created it, and
//! stays there whichever thread uses it later: sockets for a namespace
//! other than this process's are made on a short-lived thread that entered
//! it (`setns`), then used from the async runtime as usual.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Which network namespace of the host a pod is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNetns {
    /// This process's own (a host-network pod).
    Current,
    /// The namespace at this path (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
    Path(PathBuf),
}

impl HostNetns {
    /// Runs `make` in the namespace and returns what it made.
    fn within<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let path = match self {
            HostNetns::Current => return make(),
            HostNetns::Path(p) => p.clone(),
        };
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns on a descriptor we own, for this thread only;
            // the thread ends when `make` returns.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            make()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    }

    /// A listener on `addr` in the namespace.
    pub(crate) fn bind(&self, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        self.within(move || {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
    }

    /// An unconnected socket for `remote`, made in the namespace.
    pub(crate) fn socket_for(&self, remote: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
        let v4 = remote.is_ipv4();
        let fd = self.within(move || {
            let s = if v4 {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            Ok(std::os::fd::IntoRawFd::into_raw_fd(s))
        })?;
        // SAFETY: `fd` is the socket just made, owned by nothing else.
        let stream = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(tokio::net::TcpSocket::from_std_stream(stream))
    }
}

/// Where a guest listener on `addr` is mirrored in the namespace.
pub(crate) fn mirror_address(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.ip().is_loopback() {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    SocketAddr::new(ip.into(), addr.port())
}
