  ;; Leaves a mark in its memory (at 4096) and in a global, then allows for
  ;; 60 s; denies with "remembered" if it finds a mark already there, i.e.
  ;; if it sees state from an earlier evaluation (of itself, or of another
  ;; policy whose memory it should never see).
  (global $seen (mut i32) (i32.const 0))
  (data (i32.const 3000) "remembered")
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (local $was i32)
    (local.set $was (i32.or (global.get $seen) (i32.load (i32.const 4096))))
    (global.set $seen (i32.const 1))
    (i32.store (i32.const 4096) (i32.const 1))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (if (local.get $was)
      (then
        (i32.store8 (local.get $ret) (i32.const 1))
        (call $pair (i32.add (local.get $ret) (i32.const 4)) (i32.const 3000) (i32.const 10)))
      (else
        (i32.store8 (local.get $ret) (i32.const 0))
        (i32.store offset=4 (local.get $ret) (i32.const 60))
        (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
        (i32.store8 offset=16 (local.get $ret) (i32.const 0))))
    (local.get $ret))
