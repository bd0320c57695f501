  ;; Traps at once (`unreachable`): a policy that fails mid-decision, to
  ;; sit between honest neighbours in one decision's store.
  (func (export "jitgate:policy/policy@0.1.0#evaluate") (param i32) (result i32)
    unreachable)
