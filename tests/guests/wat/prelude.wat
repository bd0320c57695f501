  (import "jitgate:policy/host@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory $mem (export "memory") 2)
  ;; A bump allocator from 64 KiB up; it grows memory 0 as needed.
  (global $heap (mut i32) (i32.const 65536))
  (func $alloc (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (local.set $have (i32.shl (memory.size $mem) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (drop (memory.grow $mem
          (i32.shr_u
            (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
            (i32.const 16))))))
    (global.set $heap (local.get $end))
    (local.get $p))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $alloc (local.get 2) (local.get 3)))
  ;; Store a (ptr, len) pair at `at`.
  (func $pair (param $at i32) (param $ptr i32) (param $len i32)
    (i32.store (local.get $at) (local.get $ptr))
    (i32.store offset=4 (local.get $at) (local.get $len)))
  (data $name (i32.const 1024) "{NAME}")
  (data $version (i32.const 1280) "0.1.0")
  (data $about (i32.const 1296) "hostile guest")
  (data $task (i32.const 1536) "{TASK}")
