  ;; Grows its memory by 11 MiB, touches all of it, then allows for 60 s:
  ;; within its own 16 MiB budget, but two of them are over it together.
  ;; Two in one decision both allow only if each has a budget of its own.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (local $at i32)
    (local.set $at (i32.shl (memory.grow $mem (i32.const 176)) (i32.const 16)))
    (memory.fill $mem (local.get $at) (i32.const 1) (i32.const 11534336))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (i32.store8 offset=16 (local.get $ret) (i32.const 0))
    (local.get $ret))
