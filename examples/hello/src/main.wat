;; hello: the smallest useful Spirit. Logs a greeting with the time it ran,
;; and returns the number of bytes it logged.
(module
  (import "vudo" "host_time_now" (func $time_now (result i64)))
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Hello from a vudo Spirit!")
  (func $main (export "main") (result i32)
    (drop (call $time_now))
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 25)))
    (i32.const 25))
  (func (export "test_greeting_length") (result i32)
    ;; 0 means pass
    (i32.sub (call $main) (i32.const 25))))
