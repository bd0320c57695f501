  ;; Output amplification: a require-approval naming 120 approver groups
  ;; that all point at one 1 MiB string. 1 MiB of guest memory; a host that
  ;; lifts the whole answer before checking it allocates 120 MiB.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $big i32) (local $groups i32) (local $i i32) (local $ret i32)
    (local.set $big (call $alloc (i32.const 2) (i32.const 1048576)))
    (memory.fill (local.get $big) (i32.const {FILL}) (i32.const 1048576))
    (local.set $groups (call $alloc (i32.const 4) (i32.const 960)))
    (loop $each
      (call $pair
        (i32.add (local.get $groups) (i32.shl (local.get $i) (i32.const 3)))
        (local.get $big) (i32.const 1048576))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (i32.const 120))))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 28)))
    (i32.store8 (local.get $ret) (i32.const 2))
    (call $pair (i32.add (local.get $ret) (i32.const 4)) (local.get $groups) (i32.const 120))
    (i32.store8 offset=12 (local.get $ret) (i32.const 1))
    (i32.store offset=16 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 20)) (i32.const 1296) (i32.const 13))
    (local.get $ret))
