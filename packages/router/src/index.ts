export { startRouter } from './startRouter.js';
export { BALANCER_STRATEGIES, resolveRouterOptions } from './RouterOptions.js';
export type { BalancerStrategy, RouterOptions, RunningRouter, ResolvedRouterOptions } from './RouterOptions.js';
export type { RegistryKind } from '@flotilla/registry';

// The parts, for tests and for embedding them separately.
export { Catalog } from './catalog/Catalog.js';
export type { CatalogChange, PromptEntry, ResourceEntry, ResourceTemplateEntry, ServerEntry, ServerRoute, ToolEntry } from './catalog/CatalogEntries.js';
export type { ServerListing } from './catalog/ServerListing.js';
export type { Balancer, Placement, PlacementRequest, ReplicaView } from './balancer/Balancer.js';
export type { LoadSignals, ReportedLoad, ReportedCallProgress, OwnCallSignals, UnseenCall, MeasuredLatency, ToolLatencyEstimate } from './balancer/LoadSignals.js';
export { ownCountsOnly } from './balancer/LoadSignals.js';
export { LeastOutstandingBalancer } from './balancer/LeastOutstandingBalancer.js';
export { RoundRobinBalancer } from './balancer/RoundRobinBalancer.js';
export { ProgressAwareBalancer, serviceTimes, type ProgressAwareOptions } from './balancer/ProgressAwareBalancer.js';
export { P2cEwmaBalancer, type P2cEwmaOptions } from './balancer/P2cEwmaBalancer.js';
export { expectedCompletion, remainingMs, type CompletionEstimate } from './balancer/expectedCompletion.js';
export { seededRandom, sampleTwo, type Random } from './balancer/Random.js';
export { createBalancer, type BalancerOptions } from './balancer/createBalancer.js';
export { NodeLoadView, type NodeLoadSnapshot, type NodeReports, type ReceivedProgress, type NatsLinkStatus } from './discovery/NodeLoadView.js';
export { NodeWatchdog, DEFAULT_WATCHDOG_OPTIONS, type NodeWatchdogOptions, type WatchedNode } from './discovery/NodeWatchdog.js';
export type { ReplicaDirectory, ToolBreakerListener } from './discovery/ReplicaDirectory.js';
export { NodeGuard, type BreakerState, type NodeGuardOptions } from './endpoint/NodeGuard.js';
export type { ForwardTarget, Unavailability } from './endpoint/ForwardTarget.js';
export { PeakEwma } from './endpoint/PeakEwma.js';
export { NodeLatency, MIN_SAMPLES_FOR_P95 } from './endpoint/NodeLatency.js';
export { OwnCallLedger } from './endpoint/OwnCallLedger.js';
export { isNodeFault, isToolFault } from './endpoint/breakerFaults.js';
export { CallForwarder, DEFAULT_FORWARDING_POLICY, type ForwardingPolicy, type ForwardRequest } from './forwarding/CallForwarder.js';
export { ClientDisconnectedError, type ClientCallContext } from './forwarding/ClientCallContext.js';
export { UpstreamFailure, CallCancelledError, classifyExchangeError } from './upstream/UpstreamFailure.js';
export { NoResponseError, HttpStatusError } from './upstream/McpHttpChannel.js';
export { JsonRpcError } from './errors/JsonRpcError.js';
export { ToolArgumentValidator, type ArgumentCheck } from './front/ToolArgumentValidator.js';
export { OffLoopArgumentValidator, DEFAULT_ARGUMENT_CHECK_LIMITS, type ArgumentCheckLimits } from './front/validation/OffLoopArgumentValidator.js';
export { ToolSchemaGuard, DEFAULT_TOOL_SCHEMA_LIMITS, type ToolSchemaLimits } from './upstream/ToolSchemaGuard.js';
export { sanitizeUpstreamText } from './upstream/sanitizeUpstreamText.js';
export { HostOriginPolicy } from './front/HostOriginPolicy.js';
export { listPage, LIST_PAGE_SIZE } from './front/ListPage.js';
export { readRequestBody, type BodyRead } from './front/RequestBody.js';
export { RouterMetrics, ROUTER_METRICS_PREFIX, type RouterMetricsSources, type HttpRoute } from './metrics/RouterMetrics.js';
export { UNKNOWN_TOOL, type AttemptRecord, type AttemptResult, type CallObserver, type CallOutcome, type CallRecord } from './forwarding/CallObserver.js';
export {
  DashboardSnapshotSchema,
  DASHBOARD_SNAPSHOT_VERSION,
  type DashboardSnapshot,
  type DashboardNode,
  type DashboardTool,
  type FailedCall,
  type NodeStatus,
  type Readiness,
} from './ops/dashboard/DashboardSnapshot.js';

// Front door (authentication, access policy) and limits.
export { FrontDoor, PROTECTED_RESOURCE_PATH, type Admission } from './auth/FrontDoor.js';
export { FrontDoorOptionsSchema, authConfigured, isLoopbackHost, type FrontDoorOptions } from './auth/FrontDoorOptions.js';
export { JwtVerifier, JwtOptionsSchema, type JwtOptions, type TokenVerdict } from './auth/JwtVerifier.js';
export { ApiKeyStore, ApiKeyFileSchema, createApiKey, hashApiKey, parseKeyFile, type ApiKeyEntry, type CreatedApiKey } from './auth/ApiKeys.js';
export { AccessPolicy, AccessPolicySchema, Grants, type AccessPolicyDocument, type AccessKind } from './auth/AccessPolicy.js';
export { Glob } from './auth/Glob.js';
export { IdentityLabels } from './auth/IdentityLabels.js';
export type { Identity } from './auth/Identity.js';
export type { Caller } from './auth/Caller.js';
export { FairScheduler, type FairSchedulerLimits } from './limits/FairScheduler.js';
export { TokenBuckets } from './limits/TokenBuckets.js';
export { LimitsOptionsSchema, type LimitsOptions } from './limits/LimitsOptions.js';
export type { RouterSecurityOptions } from './security/RouterSecurityOptions.js';
