  ;; 3,000 calls to `log` with 64 KiB each, in straight-line code: no loop
  ;; back-edge and no function entry for the epoch check to stop, so only a
  ;; host function that checks the deadline itself ends it on time.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $big i32) (local $ret i32)
    (local.set $big (call $alloc (i32.const 1) (i32.const 65536)))
    (memory.fill (local.get $big) (i32.const 0x73) (i32.const 65536))
    ;; @repeat 3000
    (call $log (i32.const 2) (local.get $big) (i32.const 65536))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (local.get $ret))
