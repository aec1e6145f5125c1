//! Where the pod network meets real host sockets, on purpose only:
//!
//! - **Publishing** (`ports[].hostPort`, `wasipod run --publish`): a host
//!   listener whose connections are forwarded to a port of the pod.
//! - **Outbound** (the `wasipod.io/outbound` annotation): a guest's connect
//!   to an allowed address outside the pod network goes out through a host
//!   socket.
//!
//! Each forwarded connection copies bytes both ways with half-close, and
//! ends when either side closes or the pod goes away.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::PodNet;
use super::pipe::{Pipe, PipeReader, PipeWriter};

/// Copies between a host stream and a virtual connection until both
/// directions are closed, or `stop` fires.
pub(crate) async fn splice(
    stream: TcpStream,
    to_pod: Arc<Pipe>,
    from_pod: Arc<Pipe>,
    stop: CancellationToken,
) {
    let (rd, wr) = stream.into_split();
    let work = async {
        tokio::join!(
            host_to_pod(rd, PipeWriter(to_pod)),
            pod_to_host(PipeReader(from_pod), wr)
        );
    };
    tokio::select! {
        _ = work => {}
        _ = stop.cancelled() => {}
    }
}

/// A virtual connection as a tokio stream, for the runtime's own clients
/// on the pod network (gRPC probes): bytes are copied between the returned
/// end and the connection's pipes until either side closes.
pub(crate) fn stream(to_pod: Arc<Pipe>, from_pod: Arc<Pipe>) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (rd, wr) = tokio::io::split(theirs);
    tokio::spawn(async move {
        tokio::join!(
            host_to_pod(rd, PipeWriter(to_pod)),
            pod_to_host(PipeReader(from_pod), wr)
        );
    });
    ours
}

async fn host_to_pod(mut rd: impl AsyncRead + Unpin, mut w: PipeWriter) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return, // dropping `w` is the half-close
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            w.writable().await;
            let room = match w.room() {
                Ok(room) => room,
                Err(_) => return,
            };
            let k = room.min(n - off);
            if k > 0 && w.write_now(&buf[off..off + k]).is_err() {
                return;
            }
            off += k;
        }
    }
}

async fn pod_to_host(mut r: PipeReader, mut wr: impl AsyncWrite + Unpin) {
    loop {
        r.readable().await;
        match r.read_now(64 * 1024) {
            Ok(bytes) if bytes.is_empty() => continue,
            Ok(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    let _ = wr.shutdown().await;
}

/// The first pause after a failed accept.
pub(crate) const ACCEPT_PAUSE_MIN: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest pause after failed accepts in a row.
pub(crate) const ACCEPT_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Accepts host connections on `listener` and forwards each to
/// `target` in the pod, until `stop` fires.
pub(crate) async fn publish(
    pod: std::sync::Weak<PodNet>,
    listener: tokio::net::TcpListener,
    target: SocketAddr,
    stop: CancellationToken,
) {
    // After a failed accept (EMFILE, ENOBUFS, ...) the pending client is
    // still there and the next accept would fail at once: wait, doubling
    // the pause up to a second, instead of spinning a core.
    let mut pause = ACCEPT_PAUSE_MIN;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                pause = ACCEPT_PAUSE_MIN;
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, pause = ?pause, "accept on a published port failed");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.cancelled() => return,
                }
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                continue;
            }
        };
        let Some(pod) = pod.upgrade() else { return };
        let _ = stream.set_nodelay(true);
        // The pod sees the connection coming from the network's gateway,
        // with the host peer's port.
        let remote = SocketAddr::new(pod.gateway().into(), peer.port());
        match pod.enqueue(target, remote) {
            Ok((to_pod, from_pod)) => {
                tokio::spawn(splice(stream, to_pod, from_pod, stop.clone()));
            }
            // Nobody listens there (yet): the host client sees the
            // connection closed.
            Err(_) => drop(stream),
        }
    }
}
