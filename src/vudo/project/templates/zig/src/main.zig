//! {{name}}: a WASI program in Zig, built by `vudo build` for wasm32-wasi and run by
//! `vudo run` in a capability-checked sandbox.

const std = @import("std");

pub fn main() void {
    // std.debug.print writes to stderr (fd 2), which vudo passes through as written.
    std.debug.print("Hello from {s}, a WASI program in Zig!\n", .{"{{name}}"});
}
