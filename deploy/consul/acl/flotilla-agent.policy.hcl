# ACL policy for Flotilla agents (the token in the agent's CONSUL_HTTP_TOKEN).
#
# - register, update (TTL check), deregister its own instance of the service: service:write;
# - before registering, the agent reads the service's instances across the datacenter to refuse a node id
#   that another live agent holds: /v1/health/service/flotilla-agent needs service:read (implied by write)
#   and node:read on the nodes the instances run on (Consul filters out entries on unreadable nodes).
# Nothing else: no KV, no other services, no node:write (the Consul agent's own token syncs the catalog).

service "flotilla-agent" {
  policy = "write"
}

node_prefix "" {
  policy = "read"
}
