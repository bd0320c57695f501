  ;; A well-formed require-approval: one approval from `ops` for 60 s.
  ;; Built as written, against the previous contract (0.1.0): approval-terms
  ;; is groups, min, ttl, reason (28 bytes). With `{REVOKE}` set (a 0.2.0
  ;; build) the record ends with revoke-on-ticket-close (32 bytes).
  (data (i32.const 2048) "ops")
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (local $ret i32)
    (call $pair (i32.const 2100) (i32.const 2048) (i32.const 3))
    (local.set $ret (call $alloc (i32.const 4) (i32.const 32)))
    (i32.store8 (local.get $ret) (i32.const 2))
    (call $pair (i32.add (local.get $ret) (i32.const 4)) (i32.const 2100) (i32.const 1))
    (i32.store8 offset=12 (local.get $ret) (i32.const 1))
    (i32.store offset=16 (local.get $ret) (i32.const 60))
    (call $pair (i32.add (local.get $ret) (i32.const 20)) (i32.const 1296) (i32.const 13))
    {REVOKE}
    (local.get $ret))
