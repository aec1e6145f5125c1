//! `http-server ADDR`: a small HTTP/1.1 server on plain `std::net`, one
//! connection at a time, `Connection: close` after each response.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | 200 `hello from wasipod` and the pod's hostname |
//! | `GET /healthz` | 200 `ok`, or 500 `failing` after `/admin/fail` |
//! | `GET /admin/fail`, `GET /admin/recover` | switch /healthz to 500 / back to 200 |
//! | `GET /slow?ms=N` | 200 after N milliseconds |
//! | `POST /echo` | 200 with the request body |
//! | anything else | 404 |
//!
//! Prints `listening on ADDR`, then one line per request:
//! `GET /healthz 200`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "0.0.0.0:8080".into());
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("http-server: bind {addr}: {e}");
        std::process::exit(1)
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let mut healthy = true;
    loop {
        let (stream, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("http-server: accept: {e}");
                continue;
            }
        };
        if let Err(e) = handle(stream, &mut healthy) {
            eprintln!("http-server: {e}");
        }
    }
}

fn handle(stream: TcpStream, healthy: &mut bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("/").to_string());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let hostname = std::env::var("HOSTNAME").unwrap_or_default();
    let (status, reply): (u16, Vec<u8>) = match (method.as_str(), path) {
        ("GET", "/") => (200, format!("hello from wasipod {hostname}\n").into_bytes()),
        ("GET", "/healthz") if *healthy => (200, b"ok\n".to_vec()),
        ("GET", "/healthz") => (500, b"failing\n".to_vec()),
        ("GET", "/admin/fail") => {
            *healthy = false;
            (200, b"now failing\n".to_vec())
        }
        ("GET", "/admin/recover") => {
            *healthy = true;
            (200, b"recovered\n".to_vec())
        }
        ("GET", "/slow") => {
            let ms = query.strip_prefix("ms=").and_then(|v| v.parse().ok()).unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(ms));
            (200, format!("slept {ms} ms\n").into_bytes())
        }
        ("POST", "/echo") => (200, body),
        _ => (404, b"not found\n".to_vec()),
    };
    println!("{method} {path} {status}");
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.len()
    )?;
    stream.write_all(&reply)?;
    stream.flush()
}
