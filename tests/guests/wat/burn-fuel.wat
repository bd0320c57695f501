  ;; Counts down from {ITER} (five fuel units a turn), then allows for 60 s:
  ;; most of one evaluation's fuel, so two in one decision both allow only
  ;; if each gets a budget of its own.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (local $n i32)
    (local.set $n (i32.const {ITER}))
    (loop $turn
      (br_if $turn (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (i32.store8 offset=16 (local.get $ret) (i32.const 0))
    (local.get $ret))
