//! {{name}}: a vudo Spirit in Zig, compiled to wasm32 by `vudo build`.

// Host functions need the capability named in spirit.toml (host_log: actuator_log).
extern "vudo" fn host_log(level: i32, ptr: [*]const u8, len: usize) i32;

const greeting = "Hello from a vudo Spirit!";

/// `vudo run` calls main: log a greeting, return its length in bytes.
export fn main() i32 {
    _ = host_log(2, greeting.ptr, greeting.len);
    return @intCast(greeting.len);
}

/// `vudo run --function add -- 2 3` prints 5.
export fn add(a: i32, b: i32) i32 {
    return a +% b;
}

/// `vudo test` runs every test_* export in a fresh sandbox: returning 0 passes.
export fn test_greeting_length() i32 {
    return main() - 25;
}

export fn test_add() i32 {
    return add(2, 3) - 5;
}
