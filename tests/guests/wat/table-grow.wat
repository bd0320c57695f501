  ;; Grows a table past the element cap: a table limit, not a memory limit.
  (table $t 1 funcref)
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (drop (table.grow $t (ref.null func) (i32.const 20000)))
    (unreachable))
