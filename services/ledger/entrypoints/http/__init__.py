"""The ledger's HTTP surface: `dependencies` (what routes need), `schemas` (what they take
and answer), `endpoints` (the routes themselves), mounted by the gateway."""
