;; upper: reads the call's input, writes it back upper-cased (ASCII letters only), or
;; lower-cased when the run was given CASE=lower. Returns the number of bytes written.
;;
;;   vudo run examples/upper --input notes.txt > NOTES.txt
;;   echo hello | vudo run examples/upper --input - --env CASE=lower -q
(module
  (import "vudo" "host_input_len" (func $input_len (result i64)))
  (import "vudo" "host_input_read" (func $input_read (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $output_write (param i32 i32) (result i32)))
  (import "vudo" "host_env_get" (func $env_get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "CASE")
  (data (i32.const 16) "lower")

  ;; 1 when the variable CASE is "lower" (a run without the variable, or not granted
  ;; sensor_environment, upper-cases)
  (func $lower (result i32)
    (if (i32.ne (call $env_get (i32.const 0) (i32.const 4) (i32.const 32) (i32.const 8))
                (i32.const 5))
      (then (return (i32.const 0))))
    ;; compare the 5 bytes at 32 with "lower" at 16 (4 + 1)
    (i32.and
      (i32.eq (i32.load (i32.const 32)) (i32.load (i32.const 16)))
      (i32.eq (i32.load8_u (i32.const 36)) (i32.load8_u (i32.const 20)))))

  (func $main (export "main") (result i32)
    (local $total i32) (local $n i32) (local $i i32) (local $c i32)
    (local $from i32) (local $delta i32) (local $offset i64) (local $written i32)
    (if (call $lower)
      (then (local.set $from (i32.const 65)) (local.set $delta (i32.const 32)))
      (else (local.set $from (i32.const 97)) (local.set $delta (i32.const -32))))
    ;; a 4 KiB buffer at 1024, filled from the input chunk by chunk
    (block $done
      (loop $chunk
        (local.set $n (call $input_read (i32.const 1024) (i32.const 4096) (local.get $offset)))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $i (i32.const 0))
        (block $end
          (loop $byte
            (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
            (if (i32.lt_u (i32.sub (local.get $c) (local.get $from)) (i32.const 26))
              (then (i32.store8 (i32.add (i32.const 1024) (local.get $i))
                                (i32.add (local.get $c) (local.get $delta)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $byte)))
        (local.set $written (call $output_write (i32.const 1024) (local.get $n)))
        (if (i32.lt_s (local.get $written) (i32.const 0)) (then (return (local.get $written))))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (local.set $offset (i64.add (local.get $offset) (i64.extend_i32_u (local.get $n))))
        (br $chunk)))
    (local.get $total)))
