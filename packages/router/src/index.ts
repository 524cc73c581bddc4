export { startRouter } from './startRouter.js';
export { BALANCER_STRATEGIES, resolveRouterOptions } from './RouterOptions.js';
export type { BalancerStrategy, RouterOptions, RunningRouter, ResolvedRouterOptions } from './RouterOptions.js';
export type { RegistryKind } from '@flotilla/registry';

// The parts, for tests and for embedding them separately.
export { Catalog } from './catalog/Catalog.js';
export type { CatalogChange, PromptEntry, ResourceEntry, ResourceTemplateEntry, ServerEntry, ServerRoute, ToolEntry } from './catalog/CatalogEntries.js';
export type { ServerListing } from './catalog/ServerListing.js';
export type { Balancer, PlacementRequest, ReplicaView } from './balancer/Balancer.js';
export { LeastOutstandingBalancer } from './balancer/LeastOutstandingBalancer.js';
export { RoundRobinBalancer } from './balancer/RoundRobinBalancer.js';
export { createBalancer } from './balancer/createBalancer.js';
export { NodeLoadView, type NodeLoadSnapshot } from './discovery/NodeLoadView.js';
export { NodeGuard, type BreakerState, type NodeGuardOptions } from './endpoint/NodeGuard.js';
export { UpstreamFailure, CallCancelledError, classifyUpstreamError } from './endpoint/UpstreamFailure.js';
export { JsonRpcError } from './errors/JsonRpcError.js';
export { ToolArgumentValidator, type ArgumentCheck } from './front/ToolArgumentValidator.js';
export { HostOriginPolicy } from './front/HostOriginPolicy.js';
export { listPage, LIST_PAGE_SIZE } from './front/ListPage.js';
export { readRequestBody, type BodyRead } from './front/RequestBody.js';
export { RouterMetrics, ROUTER_METRICS_PREFIX, type RouterMetricsSources, type HttpRoute } from './metrics/RouterMetrics.js';
export { UNKNOWN_TOOL, type AttemptResult, type CallObserver, type CallOutcome } from './forwarding/CallObserver.js';
