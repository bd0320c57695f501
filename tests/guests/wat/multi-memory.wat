  ;; Four memories (the pool allows four per component), three of them
  ;; grown to 12 MiB and touched: 36 MiB and more against a 16 MiB budget
  ;; that was enforced per memory.
  (memory $m1 0)
  (memory $m2 0)
  (memory $m3 0)
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (drop (memory.grow $m1 (i32.const 192)))
    (memory.fill $m1 (i32.const 0) (i32.const 1) (i32.const 12582912))
    (drop (memory.grow $m2 (i32.const 192)))
    (memory.fill $m2 (i32.const 0) (i32.const 1) (i32.const 12582912))
    (drop (memory.grow $m3 (i32.const 192)))
    (memory.fill $m3 (i32.const 0) (i32.const 1) (i32.const 12582912))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 20)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (i32.store offset=4 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 8)) (i32.const 1296) (i32.const 13))
    (local.get $ret))
