//! `tcp-echo`: a TCP echo server and client on plain `std::net`.
//!
//! - `tcp-echo serve ADDR [CONNECTIONS]`: listen on ADDR (e.g. `0.0.0.0:7`),
//!   and for each connection send back every byte received until the client
//!   closes its side; stop after CONNECTIONS connections (default: never).
//!   Prints `listening on ADDR` once bound, and one line per connection.
//! - `tcp-echo send ADDR TEXT`: connect (retrying while nobody listens, up to
//!   10 s), send TEXT, close the sending side, print what comes back.
//! - `tcp-echo bulk ADDR MIB`: send MIB mebibytes of a known pattern and
//!   check that exactly the same bytes come back; prints `bulk ok N bytes`.
//! - `tcp-echo pingpong ADDR N`: N request/response round trips of 32 bytes
//!   on one connection; prints `pingpong ok N`.
//! - `tcp-echo fan-in ADDR N`: accept N connections and hold them all open,
//!   then answer each: read the client's message to its end, send it back.
//! - `tcp-echo fan-out ADDR N`: open N connections at once, send a distinct
//!   message on each, then check every answer; prints `fan-out ok N`.
//!
//! On wasm32-wasip2 these calls go through wasi:sockets; under wasipod they
//! never touch a host socket.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |i: usize| {
        args.get(i).cloned().unwrap_or_else(|| {
            eprintln!("usage: tcp-echo serve ADDR [N] | send ADDR TEXT | bulk ADDR MIB");
            std::process::exit(2)
        })
    };
    match get(1).as_str() {
        "serve" => serve(&get(2), args.get(3).map(|n| n.parse().unwrap())),
        "send" => {
            let mut s = connect(&get(2));
            s.write_all(args[3..].join(" ").as_bytes()).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            println!("{reply}");
        }
        "bulk" => bulk(&get(2), get(3).parse().unwrap()),
        "fan-in" => fan_in(&get(2), get(3).parse().unwrap()),
        "pingpong" => pingpong(&get(2), get(3).parse().unwrap()),
        "fan-out" => fan_out(&get(2), get(3).parse().unwrap()),
        other => {
            eprintln!("tcp-echo: unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if start.elapsed() < Duration::from_secs(10) && e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => {
                eprintln!("tcp-echo: connect {addr}: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn serve(addr: &str, connections: Option<u64>) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("tcp-echo: bind {addr}: {e}");
        std::process::exit(1)
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let mut served = 0;
    while connections.is_none_or(|n| served < n) {
        let (mut stream, peer) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    stream.write_all(&buf[..n]).unwrap();
                    total += n as u64;
                }
                Err(e) => {
                    eprintln!("tcp-echo: read from {peer}: {e}");
                    break;
                }
            }
        }
        println!("echoed {total} bytes to {peer}");
        served += 1;
    }
}

fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

fn bulk(addr: &str, mib: u64) {
    let total = mib << 20;
    let mut s = connect(addr);
    // Write and read in turns so neither side's buffer fills up.
    let (mut sent, mut got) = (0u64, 0u64);
    let mut out = vec![0u8; 32 * 1024];
    let mut inb = vec![0u8; 64 * 1024];
    while got < total {
        if sent < total && sent - got < 128 * 1024 {
            let n = out.len().min((total - sent) as usize);
            for (j, b) in out[..n].iter_mut().enumerate() {
                *b = pattern(sent + j as u64);
            }
            s.write_all(&out[..n]).unwrap();
            sent += n as u64;
            if sent == total {
                s.shutdown(Shutdown::Write).unwrap();
            }
            continue;
        }
        let n = s.read(&mut inb).unwrap();
        if n == 0 {
            break;
        }
        for (j, b) in inb[..n].iter().enumerate() {
            if *b != pattern(got + j as u64) {
                eprintln!("tcp-echo: byte {} differs", got + j as u64);
                std::process::exit(1);
            }
        }
        got += n as u64;
    }
    if got != total {
        eprintln!("tcp-echo: got {got} of {total} bytes");
        std::process::exit(1);
    }
    println!("bulk ok {got} bytes");
}

fn fan_in(addr: &str, n: usize) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("tcp-echo: bind {addr}: {e}");
        std::process::exit(1)
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(listener.accept().unwrap().0);
    }
    println!("holding {} connections", held.len());
    for mut s in held {
        let mut msg = Vec::new();
        s.read_to_end(&mut msg).unwrap();
        s.write_all(&msg).unwrap();
    }
    println!("answered {n}");
}

fn fan_out(addr: &str, n: usize) {
    let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("message {i}").as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        if reply != format!("message {i}") {
            eprintln!("tcp-echo: connection {i} answered {reply:?}");
            std::process::exit(1);
        }
    }
    println!("fan-out ok {n}");
}

fn pingpong(addr: &str, n: u64) {
    let mut s = connect(addr);
    s.set_nodelay(true).ok();
    let mut msg = [0u8; 32];
    let mut back = [0u8; 32];
    for i in 0..n {
        msg[..8].copy_from_slice(&i.to_le_bytes());
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        if back != msg {
            eprintln!("tcp-echo: round trip {i} came back different");
            std::process::exit(1);
        }
    }
    s.shutdown(Shutdown::Write).unwrap();
    println!("pingpong ok {n}");
}
