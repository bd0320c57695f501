  ;; 32 log lines of 100 KiB each (within the bytes a call may copy), then
  ;; an allow: each kept line must own a buffer of its kept size (1 KiB),
  ;; not the 100 KiB it was cut from.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $big i32) (local $i i32) (local $ret i32)
    (local.set $big (call $alloc (i32.const 1) (i32.const 102400)))
    (memory.fill (local.get $big) (i32.const 0x77) (i32.const 102400))
    (loop $each
      (call $log (i32.const 2) (local.get $big) (i32.const 102400))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (i32.const 32))))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (local.get $ret))
