;; lowercase: the call's input, with ASCII A-Z lowercased, as its output.
;;
;; A plugin-shaped Spirit: main takes no parameters and returns 0 (or a negative error
;; code), reading its input with host_input_read and writing its output with
;; host_output_write, 32 KiB at a time, so any input up to the input limit works. It
;; needs no capability. examples/titlecase calls it with host_spirit_call.
(module
  (import "vudo" "host_input_read" (func $input_read (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  (func (export "main") (result i32)
    (local $offset i64) (local $n i32) (local $i i32) (local $c i32) (local $r i32)
    (block $done
      (loop $chunk
        (local.set $n (call $input_read (i32.const 0) (i32.const 32768) (local.get $offset)))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $i (i32.const 0))
        (block $end
          (loop $byte
            (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (local.get $i)))
            ;; 'A'..'Z' (65..90) -> 'a'..'z'
            (if (i32.lt_u (i32.sub (local.get $c) (i32.const 65)) (i32.const 26))
              (then (i32.store8 (local.get $i) (i32.add (local.get $c) (i32.const 32)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $byte)))
        (local.set $r (call $output_write (i32.const 0) (local.get $n)))
        (if (i32.lt_s (local.get $r) (i32.const 0)) (then (return (local.get $r))))
        (local.set $offset (i64.add (local.get $offset) (i64.extend_i32_u (local.get $n))))
        (br $chunk)))
    (i32.const 0)))
