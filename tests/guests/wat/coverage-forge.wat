  ;; Logs a forged coverage marker (with an ANSI escape in its file name)
  ;; and allows for 60 s. `{SECTION}` is a `jitgate-coverage` custom
  ;; section (the mark of a coverage build) or nothing.
  {SECTION}
  (data $marker (i32.const 2048) "jitgate-coverage/1 7:5 src/lib.rs\1b[2J")
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (call $log (i32.const 2) (i32.const 2048) (i32.const 37))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (i32.store8 offset=16 (local.get $ret) (i32.const 0))
    (local.get $ret))
