//! {{name}}: a WASI program in Rust, built by `vudo build` with
//! `cargo build --target wasm32-wasip1` and run by `vudo run` in a sandbox.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        println!("Hello from {{name}}, a WASI program in Rust!");
    } else {
        println!("Hello, {}!", args.join(" "));
    }
}
