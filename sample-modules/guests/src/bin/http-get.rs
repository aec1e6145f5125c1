//! `http-get HOST:PORT PATH [EVERY_MS COUNT]`: an HTTP/1.1 client on plain
//! `std::net`, e.g. a sidecar polling its neighbour. Prints
//! `GET PATH -> STATUS BODY` per request; with EVERY_MS and COUNT it polls
//! COUNT times. A refused connection is retried for up to 10 s (the
//! neighbour may still be starting). Exits 1 when the last answer was not
//! 2xx or 3xx.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: http-get HOST:PORT PATH [EVERY_MS COUNT]");
        std::process::exit(2);
    }
    let (addr, path) = (&args[1], &args[2]);
    let every = args.get(3).map(|v| Duration::from_millis(v.parse().unwrap()));
    let count: u32 = args.get(4).map(|v| v.parse().unwrap()).unwrap_or(1);
    let mut ok = false;
    for i in 0..count {
        if i > 0
            && let Some(d) = every
        {
            std::thread::sleep(d);
        }
        ok = match get(addr, path) {
            Ok((status, body)) => {
                println!("GET {path} -> {status} {}", body.trim_end());
                (200..400).contains(&status)
            }
            Err(e) => {
                println!("GET {path} -> error {e}");
                false
            }
        };
    }
    std::process::exit(if ok { 0 } else { 1 });
}

fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let start = std::time::Instant::now();
    let mut s = loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused && start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => break other?,
        }
    };
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    write!(s, "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}
