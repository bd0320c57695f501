  ;; Loops until its fuel runs out: a policy that exhausts its budget
  ;; mid-decision, to sit between honest neighbours in one decision's store.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    (loop $forever (br $forever))
    unreachable)
