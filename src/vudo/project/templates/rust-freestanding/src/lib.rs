//! {{name}}: a vudo Spirit in Rust, built by `vudo build` for wasm32-unknown-unknown.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

// Host functions need the capability named in spirit.toml (host_log: actuator_log).
#[link(wasm_import_module = "vudo")]
extern "C" {
    fn host_log(level: i32, ptr: *const u8, len: usize) -> i32;
}

const GREETING: &[u8] = b"Hello from a vudo Spirit!";

/// `vudo run` calls main: log a greeting, return its length in bytes.
#[export_name = "main"]
pub extern "C" fn spirit_main() -> i32 {
    unsafe { host_log(2, GREETING.as_ptr(), GREETING.len()) };
    GREETING.len() as i32
}

/// `vudo run --function add -- 2 3` prints 5.
#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// `vudo test` runs every test_* export in a fresh sandbox: returning 0 passes.
#[no_mangle]
pub extern "C" fn test_greeting_length() -> i32 {
    spirit_main() - 25
}

#[no_mangle]
pub extern "C" fn test_add() -> i32 {
    add(2, 3) - 5
}
