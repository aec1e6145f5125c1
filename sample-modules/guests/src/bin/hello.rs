//! `hello`: the smallest useful guest. Prints a greeting with its argv, the
//! pod identity it was given through the environment, and which WASI it
//! was built for, then exits 0.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let wasi = if cfg!(target_env = "p2") { "wasip2 component" } else { "wasip1 module" };
    let who = std::env::var("POD_NAME").unwrap_or_else(|_| "a pod".to_string());
    println!("Hello from {who}! I am a {wasi}; argv = {args:?}");
}
