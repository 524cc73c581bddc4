import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** The agent package's version (from its package.json, found relative to this file in src/ and dist/ alike). */
export function agentVersion(): string {
  try {
    const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const parsed = z.object({ version: z.string() }).safeParse(raw);
    return parsed.success ? parsed.data.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
