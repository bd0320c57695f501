  ;; own-info
  ;; Amplification through `info`: a 1 MiB description and 64 tasks that
  ;; all point at it (65 MiB lifted by a host that lifts before checking).
  (func (export "jitgate:policy/policy@0.1.0#info") (result i32)
    (local $big i32) (local $tasks i32) (local $i i32)
    (local.set $big (call $alloc (i32.const 2) (i32.const 1048576)))
    (memory.fill (local.get $big) (i32.const 0x61) (i32.const 1048576))
    (local.set $tasks (call $alloc (i32.const 4) (i32.const 512)))
    (loop $each
      (call $pair
        (i32.add (local.get $tasks) (i32.shl (local.get $i) (i32.const 3)))
        (local.get $big) (i32.const 1048576))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (i32.const 64))))
    (call $pair (i32.const 512) (i32.const 1024) (i32.const {NAME_LEN}))
    (call $pair (i32.const 520) (i32.const 1280) (i32.const 5))
    (call $pair (i32.const 528) (local.get $big) (i32.const 1048576))
    (call $pair (i32.const 536) (local.get $tasks) (i32.const 64))
    (i32.store (i32.const 544) (i32.const 3600))
    (i32.const 512))
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (unreachable))
