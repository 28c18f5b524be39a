/* {{name}}: a vudo Spirit in C, compiled to wasm32 by `vudo build` (zig cc). */

#define VUDO_IMPORT(name) __attribute__((import_module("vudo"), import_name(name)))
#define VUDO_EXPORT(name) __attribute__((export_name(name)))

/* Host functions need the capability named in spirit.toml (host_log: actuator_log). */
VUDO_IMPORT("host_log") int host_log(int level, const char *ptr, int len);

static const char GREETING[] = "Hello from a vudo Spirit!";

/* `vudo run` calls main: log a greeting, return its length in bytes. */
VUDO_EXPORT("main") int spirit_main(void) {
    host_log(2, GREETING, (int)(sizeof(GREETING) - 1));
    return (int)(sizeof(GREETING) - 1);
}

/* `vudo run --function add -- 2 3` prints 5. */
VUDO_EXPORT("add") int add(int a, int b) { return a + b; }

/* `vudo test` runs every test_* export in a fresh sandbox: returning 0 passes. */
VUDO_EXPORT("test_greeting_length") int test_greeting_length(void) {
    return spirit_main() - 25;
}

VUDO_EXPORT("test_add") int test_add(void) { return add(2, 3) - 5; }
