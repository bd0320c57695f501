-- jitgate store, version 6: grants whose access is applied at a target
-- (issue 14). States are text, so the new ones (provisioning,
-- deprovisioning, failed) need no column; the sweep and the alarm find
-- them by these indexes. Touches only its own indexes (see 0005).
CREATE INDEX grants_provisioning_expiry ON grants (expires_at) WHERE state = 'provisioning';
CREATE INDEX grants_in_transit ON grants (state, created_at) WHERE state IN ('provisioning', 'deprovisioning');
