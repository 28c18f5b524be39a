;; {{name}}: a vudo Spirit in WebAssembly text.
;;
;; Host functions come from the "vudo" module; each needs the capability named in
;; spirit.toml (host_time_now: sensor_time, host_log: actuator_log).
(module
  (import "vudo" "host_time_now" (func $time_now (result i64)))
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Hello from a vudo Spirit!")

  ;; `vudo run` calls main: log a greeting, return its length in bytes.
  (func $main (export "main") (result i32)
    (drop (call $time_now))
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 25)))
    (i32.const 25))

  ;; `vudo run --function add -- 2 3` prints 5.
  (func $add (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (local.get $a) (local.get $b)))

  ;; `vudo test` runs every test_* export in a fresh sandbox: returning 0 passes.
  (func (export "test_greeting_length") (result i32)
    (i32.sub (call $main) (i32.const 25)))
  (func (export "test_add") (result i32)
    (i32.sub (call $add (i32.const 2) (i32.const 3)) (i32.const 5))))
