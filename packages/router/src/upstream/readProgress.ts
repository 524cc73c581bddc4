import type { Progress, ProgressToken } from '@modelcontextprotocol/sdk/types.js';

/** Reads the token and progress of a `notifications/progress` a server sent; undefined when they are not there. */
export function readProgress(params: Record<string, unknown> | undefined): { token: ProgressToken; progress: Progress } | undefined {
  if (!params) return undefined;
  const { progressToken: token, progress, total, message } = params;
  if ((typeof token !== 'string' && typeof token !== 'number') || typeof progress !== 'number' || !Number.isFinite(progress)) return undefined;
  return {
    token,
    progress: {
      progress,
      ...(typeof total === 'number' && Number.isFinite(total) ? { total } : {}),
      ...(typeof message === 'string' ? { message } : {}),
    },
  };
}
