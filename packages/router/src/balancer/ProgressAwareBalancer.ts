import type { Balancer, Placement, PlacementRequest, ReplicaView } from './Balancer.js';
import { onlyCandidate } from './onlyCandidate.js';
import { expectedCompletion, knownService } from './expectedCompletion.js';
import { ownCountsOnly, type LoadSignals, type ToolLatencyEstimate } from './LoadSignals.js';
import { sampleTwo, type Random } from './Random.js';

/** Stand-in duration when no node has statistics for a tool yet, ms; only comparisons matter then. */
const UNKNOWN_SERVICE_MS = 100;
/**
 * Estimates closer than this fraction of the smaller one, or than {@link TIE_FLOOR_MS}, are a tie: EWMAs
 * of equally fast nodes differ by noise (10 ms is within network and scheduling jitter), and letting noise decide would send
 * every call of a quiet period to whichever node happened to measure a little faster.
 */
const TIE_TOLERANCE = 0.25;
const TIE_FLOOR_MS = 10;
/**
 * A node's latency for a tool that nobody refreshed (no call of it completed there) drifts toward the
 * faster peer's with this time constant, ms. A node avoided for being slow is thus tried again now and
 * then (after about two time constants when its peers are idle), so one that recovered gets its share
 * back; under load it is tried sooner, as its peers' work grows. A node resumed after a pause typically
 * reports an EWMA inflated by the calls the pause stretched, which only traffic, or this drift, corrects.
 */
const STALE_ESTIMATE_DECAY_MS = 10_000;

/** Options of {@link ProgressAwareBalancer}. */
export interface ProgressAwareOptions {
  /** Uniform [0, 1) source for sampling; default `Math.random`. */
  random?: Random;
  /** Clock, epoch ms; default `Date.now`. */
  now?: () => number;
}

/**
 * Power of two choices on expected completion time (the default strategy). Two candidates are sampled;
 * the one where a new call of this tool is expected to finish first wins (see `expectedCompletion`):
 * remaining work from the nodes' progress reports, queued calls and this router's own calls the reports
 * do not show yet, over capacity, plus the tool's EWMA latency on that node.
 *
 * Why it beats latency × outstanding on mixed fleets: a node with free slots adds no wait, so a slow node
 * is not chosen just because a fast one has a few calls running; and a node full of calls about to end
 * is not avoided like one full of calls that just started.
 *
 * Estimates within 25% (or 10 ms) of each other are a tie, broken by fewer outstanding calls and then at
 * random, so equally fast nodes share work instead of measurement noise picking one.
 *
 * Cold start: a node without statistics for the tool is assumed as fast as the sampled peer that has some
 * (or a fixed stand-in when neither has), and without fresh reports only this router's calls count.
 */
export class ProgressAwareBalancer implements Balancer {
  readonly name = 'progress-aware';
  private readonly random: Random;
  private readonly now: () => number;

  constructor(options: ProgressAwareOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  pick<R extends ReplicaView>(candidates: readonly R[], request: PlacementRequest): Placement<R> | undefined {
    if (candidates.length === 0) return undefined;
    const sampled = sampleTwo(candidates, this.random);
    if (sampled.length === 1) return onlyCandidate(sampled[0]!);
    const now = this.now();
    const [a, b] = sampled;
    const sa = signalsOf(a, now);
    const sb = signalsOf(b, now);
    const [serviceA, serviceB] = serviceTimes(knownService(sa, request.tool), knownService(sb, request.tool));
    const ea = expectedCompletion(sa, a.capacity, request.tool, serviceA).ms;
    const eb = expectedCompletion(sb, b.capacity, request.tool, serviceB).ms;
    const compared = (x: number, y: number, other: R): string => `expected ${x.toFixed(1)} ms vs ${y.toFixed(1)} ms on ${other.nodeId}`;
    if (Math.abs(ea - eb) > Math.max(TIE_FLOOR_MS, TIE_TOLERANCE * Math.min(ea, eb))) {
      return ea < eb ? { replica: a, reason: () => compared(ea, eb, b) } : { replica: b, reason: () => compared(eb, ea, a) };
    }
    // A tie (typically: equally fast nodes, both idle): fewer outstanding, else the first sampled (random).
    if (b.outstanding < a.outstanding) return { replica: b, reason: () => `tie (${compared(eb, ea, a)}): fewer outstanding` };
    return { replica: a, reason: () => `tie (${compared(ea, eb, b)}): ${a.outstanding < b.outstanding ? 'fewer outstanding' : 'random'}` };
  }
}

/**
 * The new call's expected duration on each of two nodes: as measured there, the slower one drifting
 * toward the faster one the longer it went unrefreshed; a node without statistics is taken to be like its
 * peer (cold start).
 */
export function serviceTimes(a: ToolLatencyEstimate | undefined, b: ToolLatencyEstimate | undefined): [number, number] {
  if (!a && !b) return [UNKNOWN_SERVICE_MS, UNKNOWN_SERVICE_MS];
  if (!a) return [b!.ewmaMs, b!.ewmaMs];
  if (!b) return [a.ewmaMs, a.ewmaMs];
  const best = Math.min(a.ewmaMs, b.ewmaMs);
  const drift = (e: ToolLatencyEstimate): number => best + (e.ewmaMs - best) * Math.exp(-e.ageMs / STALE_ESTIMATE_DECAY_MS);
  return [drift(a), drift(b)];
}

function signalsOf(replica: ReplicaView, now: number): LoadSignals {
  return replica.loadSignals?.(now) ?? ownCountsOnly(replica.outstanding);
}
