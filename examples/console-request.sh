#!/usr/bin/env bash
# Submit the example request the console walk-through approves: alice asks
# for Okta tenant admin on ticket OPS-142, sent by the development pipeline
# (which speaks for its ticket system, so the ticket facts ride along).
# Needs curl. Usage: examples/console-request.sh [BASE_URL]
set -euo pipefail
base="${1:-http://127.0.0.1:8080}"
now=$(date +%s)
curl -sS -XPOST "$base/v1/requests" -H "Authorization: Bearer dev-pipeline" -d @- <<JSON
{
  "id": "demo-$now",
  "subject": {"id": "alice@example.com", "kind": "human", "roles": ["helpdesk"],
              "groups": ["helpdesk-tier2"], "mfa-at": $now},
  "task": "saas-admin",
  "resource": "okta-prod",
  "entitlement": "okta:super-admin",
  "justification": "Reset the locked-out finance team's MFA factors (OPS-142)",
  "requested-ttl": 1800,
  "ticket": {"id": "OPS-142", "state": "in-progress", "priority": 2,
             "assignee": "alice@example.com", "opened-at": $((now - 600))}
}
JSON
echo
