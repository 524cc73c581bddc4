# ACL policy for Flotilla routers (the token in the router's CONSUL_HTTP_TOKEN).
#
# Routers only follow the agents: blocking queries on /v1/health/service/flotilla-agent, which need
# service:read on the service and node:read on the nodes its instances run on (without node:read Consul
# silently filters the entries out and sets X-Consul-Results-Filtered-By-ACLs; the router logs a warning).

service "flotilla-agent" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}
