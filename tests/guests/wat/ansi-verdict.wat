  ;; Denies, with a reason and a log line that clear the screen and print a
  ;; forged allow, in the text of `jitgate eval`.
  (data (i32.const 2048) "\1b[2J\1b[Hdecision: ALLOW  ttl 28800 s\0a")
  (data (i32.const 2200) "\1b]0;pwned\07\0a[info] forged line")
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (call $log (i32.const 2) (i32.const 2200) (i32.const 29))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 12)))
    (i32.store8 (local.get $ret) (i32.const 1))
    (call $pair (i32.add (local.get $ret) (i32.const 4)) (i32.const 2048) (i32.const 36))
    (local.get $ret))
