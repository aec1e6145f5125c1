//! `toolbox`: a busybox-style guest that the tests and demo pods script.
//!
//! Usage: `toolbox CMD [ARG...]`, or `toolbox sh "CMD ARG; CMD ARG; ..."` to
//! run several commands in order (arguments are split on whitespace; no
//! quoting). Commands:
//!
//! | command | effect |
//! |---|---|
//! | `echo WORDS...` | print the words to stdout |
//! | `eprint WORDS...` | print the words to stderr |
//! | `write PATH TEXT...` | create/truncate PATH with TEXT |
//! | `append PATH TEXT...` | append TEXT and a newline to PATH |
//! | `cat PATH` | print PATH's contents (exit 1 when it cannot be read) |
//! | `ls PATH` | list a directory, one sorted name per line |
//! | `env` | print the environment, sorted, `K=V` per line |
//! | `args` | print argv, one per line |
//! | `pwd` | print the current directory |
//! | `wait-for PATH [MS]` | poll until PATH exists (exit 1 after MS, default forever) |
//! | `sleep MS` | sleep |
//! | `spin [MS]` | burn CPU, forever or for MS milliseconds |
//! | `work MS` | burn CPU for MS milliseconds of wall time; print `work: N rounds` (its progress) |
//! | `alloc MIB` | allocate and touch MIB mebibytes |
//! | `fill PATH [MIB]` | append 1 MiB blocks to PATH as fast as possible (forever, or MIB of them); print `fill PATH: error KIND after N MiB` and exit 1 when a write fails |
//! | `trap` | execute `unreachable` |
//! | `oob` | read far outside linear memory |
//! | `try-read PATH` | print `read PATH: ok N bytes` or `read PATH: error KIND` |
//! | `try-write PATH` | print `write PATH: ok` or `write PATH: error KIND` |
//! | `read-bytes PATH N` | read exactly N bytes; print `read-bytes PATH: N bytes, Z zero, D distinct` (or `: error KIND`) |
//! | `stat PATH` | print `stat PATH: file|dir|symlink|other SIZE` (or `: error KIND`) |
//! | `try-symlink TARGET LINK` | print `symlink LINK: ok` or `symlink LINK: error KIND` |
//! | `count N` | print the lines 1..=N |
//! | `cat-stdin` | copy stdin to stdout until it ends; then print `stdin: N bytes` to stderr |
//! | `fail-until PATH N` | append a line to PATH; exit 1 while PATH has fewer than N lines |
//! | `exit N` | exit with status N |
//! | `try-bind ADDR [MS]` | bind+listen; print `bind ADDR: ok PORT` or `bind ADDR: error KIND`; hold it MS ms |
//! | `try-connect ADDR` | print `connect ADDR: ok` or `connect ADDR: error KIND` |
//! | `resolve HOST` | print the addresses HOST resolves to (`resolve HOST: error KIND` on failure) |
//! | `handle-sigterm` | declare a SIGTERM handler (wasipod's contract: create `$WASIPOD_SIGTERM_HANDLER`) |
//! | `wait-sigterm [DRAIN_MS] [CODE]` | wait for `$WASIPOD_TERMINATION_FILE`, print `got SIGTERM`, sleep DRAIN_MS, print `drained`, then exit CODE (or go on with the next command) |
//! | `tail-follow PATH` | print PATH's lines as they are appended (like `tail -F`); on SIGTERM print what is left and exit 0 |
//! | `accept ADDR` | listen, accept one connection, read it to its end |
//! | `read-eof ADDR` | connect, read until the peer closes, print `eof after N bytes` |
//! | `wait-port ADDR [MS]` | retry connecting until a listener answers (exit 1 after MS) |
//! | `swap-symlink PATH TARGET` | forever: swap the folder PATH for a symlink to TARGET and back, by renames (a subPath race) |
//! | `open-many PREFIX N` | create and keep open PREFIX0..PREFIXN-1; print `opened K: ok` or `opened K: error KIND` at the first failure; then sleep forever |
//! | `make-files DIR N` | create N empty files in DIR |

use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let commands: Vec<Vec<String>> = if args.first().map(String::as_str) == Some("sh") {
        args[1..]
            .join(" ")
            .split(';')
            .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .collect()
    } else if args.is_empty() {
        eprintln!("usage: toolbox CMD [ARG...] | toolbox sh \"CMD; CMD\"");
        std::process::exit(2);
    } else {
        vec![args]
    };
    for command in commands {
        run(&command);
    }
}

/// Burns CPU for `limit` of wall time (forever without one); how many
/// rounds of 10,000 multiplications it did.
fn burn(limit: Option<Duration>) -> u64 {
    let start = Instant::now();
    let mut x: u64 = 1;
    let mut rounds: u64 = 0;
    while limit.is_none_or(|l| start.elapsed() < l) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        rounds += 1;
    }
    rounds
}

fn kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

fn run(cmd: &[String]) {
    let arg = |i: usize| -> &str {
        cmd.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("toolbox: {}: missing argument {i}", cmd[0]);
            std::process::exit(2)
        })
    };
    let rest = |i: usize| cmd.get(i..).map(|r| r.join(" ")).unwrap_or_default();
    match cmd[0].as_str() {
        "echo" => println!("{}", rest(1)),
        "eprint" => eprintln!("{}", rest(1)),
        "write" => {
            if let Err(e) = std::fs::write(arg(1), rest(2)) {
                eprintln!("toolbox: write {}: {e}", arg(1));
                std::process::exit(1);
            }
        }
        "append" => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(arg(1));
            match file.and_then(|mut f| writeln!(f, "{}", rest(2))) {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("toolbox: append {}: {e}", arg(1));
                    std::process::exit(1);
                }
            }
        }
        "cat" => match std::fs::read(arg(1)) {
            Ok(bytes) => {
                std::io::stdout().write_all(&bytes).unwrap();
                std::io::stdout().flush().unwrap();
            }
            Err(e) => {
                eprintln!("toolbox: cat {}: {e}", arg(1));
                std::process::exit(1);
            }
        },
        "ls" => match std::fs::read_dir(arg(1)) {
            Ok(entries) => {
                let mut names: Vec<String> =
                    entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                for n in names {
                    println!("{n}");
                }
            }
            Err(e) => {
                eprintln!("toolbox: ls {}: {e}", arg(1));
                std::process::exit(1);
            }
        },
        "env" => {
            let mut vars: Vec<(String, String)> = std::env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("{k}={v}");
            }
        }
        "args" => {
            for a in std::env::args() {
                println!("{a}");
            }
        }
        "pwd" => match std::env::current_dir() {
            Ok(d) => println!("{}", d.display()),
            Err(e) => println!("pwd: error {}", kind(&e)),
        },
        "wait-for" => {
            let limit = cmd.get(2).map(|ms| Duration::from_millis(ms.parse().unwrap()));
            let start = Instant::now();
            while std::fs::metadata(arg(1)).is_err() {
                if limit.is_some_and(|l| start.elapsed() > l) {
                    eprintln!("toolbox: wait-for {}: timed out", arg(1));
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "sleep" => std::thread::sleep(Duration::from_millis(arg(1).parse().unwrap())),
        "work" => {
            let rounds = burn(Some(Duration::from_millis(arg(1).parse().unwrap())));
            println!("work: {rounds} rounds");
        }
        "spin" => {
            burn(cmd.get(1).map(|ms| Duration::from_millis(ms.parse().unwrap())));
        }
        "fill" => {
            let limit: u64 = cmd.get(2).and_then(|a| a.parse().ok()).unwrap_or(u64::MAX);
            let block = vec![0xa5u8; 1 << 20];
            let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(arg(1)) {
                Ok(f) => f,
                Err(e) => {
                    println!("fill {}: error {} after 0 MiB", arg(1), kind(&e));
                    std::process::exit(1);
                }
            };
            let mut n = 0;
            while n < limit {
                if let Err(e) = file.write_all(&block) {
                    println!("fill {}: error {} after {n} MiB", arg(1), kind(&e));
                    std::process::exit(1);
                }
                n += 1;
            }
            println!("filled {}: {n} MiB", arg(1));
        }
        "alloc" => {
            let mib: usize = arg(1).parse().unwrap();
            let mut blocks = Vec::new();
            for i in 0..mib {
                let mut block = vec![0u8; 1 << 20];
                block[i % (1 << 20)] = 1;
                blocks.push(block);
            }
            println!("allocated {} MiB", blocks.len());
        }
        "trap" => {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
        }
        "oob" => {
            let p = usize::MAX - 64;
            let v = unsafe { std::ptr::read_volatile(p as *const u64) };
            println!("read {v}");
        }
        "try-read" => match std::fs::read(arg(1)) {
            Ok(b) => println!("read {}: ok {} bytes", arg(1), b.len()),
            Err(e) => println!("read {}: error {}", arg(1), kind(&e)),
        },
        "try-write" => match std::fs::write(arg(1), b"x") {
            Ok(()) => println!("write {}: ok", arg(1)),
            Err(e) => println!("write {}: error {}", arg(1), kind(&e)),
        },
        "read-bytes" => {
            use std::io::Read;
            let n: usize = arg(2).parse().unwrap();
            let mut buf = vec![0u8; n];
            match std::fs::File::open(arg(1)).and_then(|mut f| f.read_exact(&mut buf)) {
                Ok(()) => {
                    let zeros = buf.iter().filter(|b| **b == 0).count();
                    let mut seen = [false; 256];
                    buf.iter().for_each(|b| seen[*b as usize] = true);
                    let distinct = seen.iter().filter(|s| **s).count();
                    println!("read-bytes {}: {n} bytes, {zeros} zero, {distinct} distinct", arg(1));
                }
                Err(e) => println!("read-bytes {}: error {}", arg(1), kind(&e)),
            }
        }
        "stat" => match std::fs::metadata(arg(1)) {
            Ok(m) => {
                let t = m.file_type();
                let what = if t.is_file() {
                    "file"
                } else if t.is_dir() {
                    "dir"
                } else if t.is_symlink() {
                    "symlink"
                } else {
                    "other"
                };
                println!("stat {}: {what} {}", arg(1), m.len());
            }
            Err(e) => println!("stat {}: error {}", arg(1), kind(&e)),
        },
        "try-symlink" => {
            match symlink(arg(1), arg(2)) {
                Ok(()) => println!("symlink {}: ok", arg(2)),
                Err(e) => println!("symlink {}: error {}", arg(2), kind(&e)),
            }
        }
        "fail-until" => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(arg(1));
            if let Err(e) = file.and_then(|mut f| writeln!(f, "run")) {
                eprintln!("toolbox: fail-until {}: {e}", arg(1));
                std::process::exit(2);
            }
            let runs = std::fs::read_to_string(arg(1)).map(|t| t.lines().count()).unwrap_or(0);
            let needed: usize = arg(2).parse().unwrap();
            if runs < needed {
                eprintln!("run {runs} of {needed}: failing");
                std::process::exit(1);
            }
            println!("run {runs} of {needed}: succeeding");
        }
        "try-bind" => match std::net::TcpListener::bind(arg(1)) {
            Ok(l) => {
                println!("bind {}: ok {}", arg(1), l.local_addr().map(|a| a.port()).unwrap_or(0));
                std::io::stdout().flush().ok();
                if let Some(ms) = cmd.get(2) {
                    std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                }
            }
            Err(e) => println!("bind {}: error {}", arg(1), kind(&e)),
        },
        "try-connect" => match std::net::TcpStream::connect(arg(1)) {
            Ok(_) => println!("connect {}: ok", arg(1)),
            Err(e) => println!("connect {}: error {}", arg(1), kind(&e)),
        },
        "handle-sigterm" => {
            let path = std::env::var("WASIPOD_SIGTERM_HANDLER").expect("WASIPOD_SIGTERM_HANDLER is set by wasipod");
            std::fs::write(path, b"").unwrap();
        }
        "wait-sigterm" => {
            let path = std::env::var("WASIPOD_TERMINATION_FILE").expect("WASIPOD_TERMINATION_FILE is set by wasipod");
            while std::fs::metadata(&path).is_err() {
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("got SIGTERM");
            std::io::stdout().flush().ok();
            if let Some(ms) = cmd.get(1) {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            }
            println!("drained");
            std::io::stdout().flush().ok();
            if let Some(code) = cmd.get(2) {
                std::process::exit(code.parse().unwrap());
            }
        }
        "tail-follow" => {
            let handler = std::env::var("WASIPOD_SIGTERM_HANDLER").expect("run me under wasipod");
            let terminate = std::env::var("WASIPOD_TERMINATION_FILE").expect("run me under wasipod");
            std::fs::write(handler, b"").unwrap();
            let mut shown = 0usize;
            loop {
                let stop = std::fs::metadata(&terminate).is_ok();
                if let Ok(text) = std::fs::read_to_string(arg(1)) {
                    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
                    if complete > shown {
                        print!("{}", &text[shown..complete]);
                        std::io::stdout().flush().ok();
                        shown = complete;
                    }
                }
                if stop {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "accept" => {
            use std::io::Read;
            let l = std::net::TcpListener::bind(arg(1)).unwrap();
            println!("accepting on {}", arg(1));
            std::io::stdout().flush().ok();
            let (mut s, _) = l.accept().unwrap();
            println!("accepted");
            std::io::stdout().flush().ok();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
        }
        "read-eof" => {
            use std::io::Read;
            let mut s = std::net::TcpStream::connect(arg(1)).unwrap_or_else(|e| {
                eprintln!("toolbox: connect {}: {e}", arg(1));
                std::process::exit(1)
            });
            println!("connected to {}", arg(1));
            std::io::stdout().flush().ok();
            let mut buf = Vec::new();
            match s.read_to_end(&mut buf) {
                Ok(n) => println!("eof after {n} bytes"),
                Err(e) => println!("read error {}", kind(&e)),
            }
        }
        "resolve" => {
            use std::net::ToSocketAddrs;
            match (arg(1), 80).to_socket_addrs() {
                Ok(addrs) => {
                    let mut ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                    ips.dedup();
                    println!("resolve {}: {}", arg(1), ips.join(" "));
                }
                Err(e) => println!("resolve {}: error {}", arg(1), kind(&e)),
            }
        }
        "wait-port" => {
            let limit = cmd.get(2).map(|ms| Duration::from_millis(ms.parse().unwrap()));
            let start = Instant::now();
            while std::net::TcpStream::connect(arg(1)).is_err() {
                if limit.is_some_and(|l| start.elapsed() > l) {
                    eprintln!("toolbox: wait-port {}: nobody listens", arg(1));
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "swap-symlink" => {
            // PATH is the folder or a symlink to TARGET in turn, with only
            // a rename's gap in between.
            let (path, target) = (arg(1), arg(2));
            let (aside, link) = (format!("{path}.aside"), format!("{path}.link"));
            let _ = symlink(target, &link);
            let mut strays = 0u64;
            println!("swapping {path}");
            std::io::stdout().flush().ok();
            loop {
                if std::fs::rename(path, &aside).is_err() {
                    // The mount's own start created a new PATH while the
                    // folder was away: move that one out of the way (as
                    // PATH.stray-N) and put the folder back.
                    strays += 1;
                    let _ = std::fs::rename(path, format!("{path}.stray-{strays}"));
                    let _ = std::fs::rename(&aside, path);
                    continue;
                }
                let _ = std::fs::rename(&link, path);
                let _ = std::fs::rename(path, &link);
                let _ = std::fs::rename(&aside, path);
            }
        }
        "open-many" => {
            let n: usize = arg(2).parse().unwrap();
            let mut files = Vec::new();
            for i in 0..n {
                match std::fs::File::create(format!("{}{i}", arg(1))) {
                    Ok(f) => files.push(f),
                    Err(e) => {
                        println!("opened {}: error {}", files.len(), kind(&e));
                        std::io::stdout().flush().ok();
                        break;
                    }
                }
            }
            if files.len() == n {
                println!("opened {n}: ok");
                std::io::stdout().flush().ok();
            }
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "make-files" => {
            let n: usize = arg(2).parse().unwrap();
            for i in 0..n {
                std::fs::write(format!("{}/{i}", arg(1)), b"").unwrap();
            }
            println!("made {n} files");
        }
        "cat-stdin" => {
            let mut n = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
            loop {
                match std::io::Read::read(&mut stdin, &mut buf) {
                    Ok(0) => break,
                    Ok(k) => {
                        stdout.write_all(&buf[..k]).unwrap();
                        n += k as u64;
                    }
                    Err(e) => {
                        eprintln!("stdin: error {}", kind(&e));
                        std::process::exit(1);
                    }
                }
            }
            stdout.flush().ok();
            eprintln!("stdin: {n} bytes");
        }
        "count" => {
            for i in 1..=arg(1).parse::<u64>().unwrap() {
                println!("{i}");
            }
        }
        "exit" => {
            std::io::stdout().flush().ok();
            std::process::exit(arg(1).parse().unwrap())
        }
        other => {
            eprintln!("toolbox: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

/// `symlink(2)` through wasi-libc (std's wasi symlink helper is unstable).
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let (t, l) = (CString::new(target).unwrap(), CString::new(link).unwrap());
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
