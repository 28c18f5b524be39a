;; titlecase: the call's input in Title Case ("hELLO wORLD" -> "Hello World").
;;
;; It does not lowercase the text itself: it calls its dependency `lowercase`
;; (spirit.toml [dependencies], pinned by spirit.lock) with host_spirit_call, giving it the
;; input and taking back its output, then uppercases the first letter of every word.
;; `lowercase` runs in a sandbox of its own, as itself, with its own grants; this Spirit
;; needs cross_sandbox_call to reach it. Errors come back as negative codes: main returns
;; them (-9 NOT_FOUND: lowercase is not installed; -11 CALL_FAILED: it trapped).
(module
  (import "vudo" "host_input_len" (func $input_len (result i64)))
  (import "vudo" "host_input_read" (func $input_read (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $output_write (param i32 i32) (result i32)))
  (import "vudo" "host_spirit_call"
    (func $spirit_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "lowercase")
  (data (i32.const 16) "main")

  (func $is_letter (param $c i32) (result i32)
    (i32.or
      (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
      (i32.lt_u (i32.sub (local.get $c) (i32.const 65)) (i32.const 26))))

  (func (export "main") (result i32)
    (local $n i32) (local $in i32) (local $out i32) (local $len i64) (local $i i32)
    (local $c i32) (local $start i32) (local $pages i32)
    (local.set $n (i32.wrap_i64 (call $input_len)))
    ;; memory: names at 0, input at 64, lowercased text right after it
    (local.set $in (i32.const 64))
    (local.set $out (i32.add (local.get $in) (local.get $n)))
    (local.set $pages
      (i32.shr_u (i32.add (i32.add (local.get $out) (local.get $n)) (i32.const 65535))
                 (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.lt_s (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const 0))
          (then (return (i32.const -10))))))  ;; QUOTA_EXCEEDED: past the memory limit
    (drop (call $input_read (local.get $in) (local.get $n) (i64.const 0)))
    (local.set $len
      (call $spirit_call (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 4)
                         (local.get $in) (local.get $n) (local.get $out) (local.get $n)))
    (if (i64.lt_s (local.get $len) (i64.const 0))
      (then (return (i32.wrap_i64 (local.get $len)))))
    ;; the first letter of each word up: a letter after a non-letter (or at the start)
    (local.set $start (i32.const 1))
    (block $end
      (loop $byte
        (br_if $end (i32.ge_u (local.get $i) (i32.wrap_i64 (local.get $len))))
        (local.set $c (i32.load8_u (i32.add (local.get $out) (local.get $i))))
        (if (i32.and (local.get $start)
                     (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26)))
          (then (i32.store8 (i32.add (local.get $out) (local.get $i))
                            (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $start (i32.eqz (call $is_letter (local.get $c))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (call $output_write (local.get $out) (i32.wrap_i64 (local.get $len)))))
