import type { CallOutcome } from './TrackedCall.js';

/**
 * How a call ended, in the one vocabulary the agent's metrics (`outcome` label) and spans
 * (`flotilla.outcome`) share, documented in docs/observability.md. A fixed, small set: safe as a label.
 */
export const CALL_OUTCOME_LABELS = ['ok', 'tool_error', 'error', 'cancelled', 'rejected_busy', 'rejected_draining', 'deadline_exceeded'] as const;

/** One of {@link CALL_OUTCOME_LABELS}. */
export type CallOutcomeLabel = (typeof CALL_OUTCOME_LABELS)[number];

/** Why admission refused a call: capacity and queue were full, or the node drains. */
export type RejectionReason = 'busy' | 'draining';

/**
 * The label of a call that was admitted. A session that closed under a call (client DELETE, agent stop)
 * abandoned it just as a cancellation does, so both are `cancelled`.
 */
export function outcomeLabel(outcome: CallOutcome): CallOutcomeLabel {
  switch (outcome) {
    case 'completed':
      return 'ok';
    case 'tool_error':
      return 'tool_error';
    case 'failed':
      return 'error';
    case 'cancelled':
    case 'closed':
      return 'cancelled';
    case 'deadline':
      return 'deadline_exceeded';
  }
}

/** The label of a call refused at admission. */
export function rejectionLabel(reason: RejectionReason): CallOutcomeLabel {
  return reason === 'busy' ? 'rejected_busy' : 'rejected_draining';
}
