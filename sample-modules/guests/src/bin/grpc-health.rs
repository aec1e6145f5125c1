//! `grpc-health`: a gRPC server of the standard health service
//! (`grpc.health.v1.Health`, from tonic-health) over HTTP/2 (hyper), on
//! tokio's wasip2 networking — the server a `grpc` probe talks to.
//!
//! Usage: `grpc-health ADDR [FLAG_FILE]`. The server as a whole (service
//! `""`) and the service `app` are `SERVING`; when `FLAG_FILE` exists as
//! a connection is accepted, `app` is `NOT_SERVING` on it. Any other
//! service name is `NOT_FOUND`. Prints `serving on ADDR` once it listens.
//! Connections are served one at a time.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tonic_health::ServingStatus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "0.0.0.0:50051".into());
    let flag = args.get(2).cloned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter.set_service_status("", ServingStatus::Serving).await;
        reporter.set_service_status("app", ServingStatus::Serving).await;
        // Accepted with std (blocking), served with tokio: mio's own accept
        // on wasip2 sets O_NONBLOCK with fcntl, which wasi-libc refuses
        // for sockets (EINVAL); std sets it with ioctl(FIONBIO).
        let listener = std::net::TcpListener::bind(&addr)
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        println!("serving on {addr}");
        for stream in listener.incoming() {
            let stream = match stream.and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("register: {e}");
                    continue;
                }
            };
            // The flag is read for each connection (a probe makes one).
            if let Some(flag) = &flag {
                let status = if std::path::Path::new(flag).exists() {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                reporter.set_service_status("app", status).await;
            }
            let service = TowerToHyperService::new(service.clone());
            // One connection at a time (a probe's connection closes after
            // its check).
            if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection: {e:?}");
            }
        }
    });
}
