import { FlotillaErrorCode } from '@flotilla/protocol';

/** A JSON-RPC error the agent answers a call with itself, without the server seeing it. */
export interface CallRejection {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

/** Capacity and queue are full: nothing ran, safe to retry elsewhere. */
export function nodeBusy(nodeId: string, capacity: number, queued: number): CallRejection {
  return {
    code: FlotillaErrorCode.NodeBusy,
    message: `node ${nodeId} is busy (${capacity} calls running, ${queued} waiting); retry on another node`,
    data: { nodeId, retryable: true },
  };
}

/** The node is draining: nothing ran, safe to retry elsewhere. */
export function nodeDraining(nodeId: string): CallRejection {
  return {
    code: FlotillaErrorCode.NodeDraining,
    message: `node ${nodeId} is draining and accepts no new calls; retry on another node`,
    data: { nodeId, retryable: true },
  };
}

/** The caller's deadline passed; `started` tells whether the tool had begun running. */
export function deadlineExceeded(nodeId: string, started: boolean): CallRejection {
  return {
    code: FlotillaErrorCode.DeadlineExceeded,
    message: started ? `deadline exceeded on node ${nodeId}; the call was cancelled` : `deadline exceeded while waiting on node ${nodeId}; the call never ran`,
    data: { nodeId, started },
  };
}
