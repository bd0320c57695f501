  ;; own-info
  ;; A version carrying a newline and an ANSI sequence: it would forge a
  ;; log line and clear the screen of whoever runs `inspect`.
  (data (i32.const 1400) "0.1.0\0a\1b[2Jforged")
  (func (export "jitgate:policy/policy@0.1.0#info") (result i32)
    (call $pair (i32.const 512) (i32.const 1024) (i32.const {NAME_LEN}))
    (call $pair (i32.const 520) (i32.const 1400) (i32.const 16))
    (call $pair (i32.const 528) (i32.const 1296) (i32.const 13))
    (call $pair (i32.const 600) (i32.const 1536) (i32.const {TASK_LEN}))
    (call $pair (i32.const 536) (i32.const 600) (i32.const 1))
    (i32.store (i32.const 544) (i32.const 3600))
    (i32.const 512))
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (unreachable))
