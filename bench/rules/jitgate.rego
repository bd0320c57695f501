# The file-recovery rule and the composed file-recovery decision
# (baseline + file-recovery + business-hours, deny overrides) in Rego.
# Mirrors policies/{baseline,file-recovery,business-hours}/src/lib.rs.
# Input: the request as jitgate's JSON (kebab-case keys), built per decision.
package jitgate

import rego.v1

ttl := min([input["requested-ttl"], 3600])

# --- file-recovery alone ---------------------------------------------------

default file_recovery := {"outcome": "deny"}

file_recovery := {"outcome": "allow", "ttl": ttl} if {
	"helpdesk" in input.subject.roles
	input.ticket.state in {"open", "in-progress"}
	assignee_ok
}

assignee_ok if not input.ticket.assignee

assignee_ok if input.ticket.assignee == input.subject.id

# --- baseline --------------------------------------------------------------

baseline_deny if {
	not input.ticket
	input.task != "break-glass"
}

baseline_deny if input.ticket.state in {"resolved", "closed"}

baseline_deny if count(trim_space(input.justification)) < 10

baseline_deny if input["requested-ttl"] > 28800

# --- business-hours ----------------------------------------------------------

tz := 0 if not input.attributes["tz-offset-minutes"]

tz := n if {
	s := input.attributes["tz-offset-minutes"]
	regex.match(`^[+-]?[0-9]+$`, s)
	n := to_number(trim_prefix(s, "+"))
	n >= -840
	n <= 840
}

tz_known if tz == tz

local := input.now + (tz * 60)

# 1970-01-01 was a Thursday: weekday 0 = Monday.
weekday := (floor(local / 86400) + 3) % 7

hour := floor((local % 86400) / 3600)

in_hours if {
	weekday < 5
	hour >= 7
	hour < 19
}

# --- the composed decision -------------------------------------------------

decision := {"outcome": "deny"} if {
	baseline_deny
} else := {"outcome": "deny"} if {
	not tz_known
} else := {"outcome": "deny"} if {
	file_recovery.outcome == "deny"
} else := {"outcome": "require-approval", "ttl": ttl} if {
	not in_hours
} else := {"outcome": "allow", "ttl": ttl}
