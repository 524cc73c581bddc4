# What a Flotilla agent registers in Consul, written as a Consul agent service definition (HCL).
#
# Agents register themselves through the HTTP API (PUT /v1/agent/service/register, body as in
# flotilla-agent.register.json beside this file) and withdraw on clean shutdown, so you do not install
# this file to run Flotilla: it documents the shape for operators and tooling.
#
# The instance-specific parts: `id` is the agent's --node-id; the check ids end with a hash of the agent
# process's instance id; meta "record-*" carries the full node record (see docs/registry.md).

service {
  id      = "node-a"
  name    = "flotilla-agent"
  address = "10.0.0.12" # host of the agent's MCP endpoint (mcpBaseUrl)
  port    = 7801        # port of the agent's MCP endpoint
  tags    = ["echo", "files"] # hosted MCP server names

  meta = {
    flotilla-v        = "1"
    instance-id       = "3f0c6a52-9d2e-4c1b-8a77-5e2b1d4c9f10"
    version           = "0.1.0"
    zone              = "eu-west-1a"
    grpc-health       = "10.0.0.12:7802"
    capacity          = "16"
    draining          = "false"
    started-at        = "1764000000000"
    tool-digest-echo  = "sha256:9b2f6c0e4a1d"
    tool-digest-files = "sha256:c41e07aa5b93"
    record-chunks     = "1"
    record-sha256     = "ddbede10453d7563569fbaf89d068ce7dadd5b9b78867d3c60c7a2ffbeaf59b9"
    record-0          = "{\"v\":1,\"nodeId\":\"node-a\",\"instanceId\":\"3f0c6a52-9d2e-4c1b-8a77-5e2b1d4c9f10\",\"mcpBaseUrl\":\"http://10.0.0.12:7801\",\"servers\":[{\"name\":\"echo\",\"path\":\"/mcp/echo\",\"toolDigest\":\"sha256:9b2f6c0e4a1d\",\"toolCount\":2},{\"name\":\"files\",\"path\":\"/mcp/files\",\"toolDigest\":\"sha256:c41e07aa5b93\",\"toolCount\":6}],\"version\":\"0.1.0\",\"zone\":\"eu-west-1a\",\"healthAddress\":\"10.0.0.12:7802\",\"capacity\":16,\"startedAt\":1764000000000,\"draining\":false}"
  }

  # The "ping": the agent updates it every heartbeat (PUT /v1/agent/check/update/:id) with
  # Status passing (or warning while degraded/draining) and its ping data as JSON Output.
  # No heartbeat within the TTL turns the node critical; critical for 1m gets it reaped.
  check {
    id                                = "flotilla-ping:node-a:84614df0022f"
    name                              = "Flotilla agent ping"
    notes                             = "TTL check the agent updates on every heartbeat; its output is the ping data as JSON."
    ttl                               = "3s"
    deregister_critical_service_after = "1m"
  }

  # Consul itself asks the agent's grpc.health.v1 service (overall status, empty service name).
  check {
    id           = "flotilla-grpc:node-a:84614df0022f"
    name         = "Flotilla agent gRPC health"
    notes        = "grpc.health.v1 Check of the whole agent (empty service name)."
    grpc         = "10.0.0.12:7802"
    grpc_use_tls = false
    interval     = "5s"
    timeout      = "2s"
    status       = "passing"
  }
}
