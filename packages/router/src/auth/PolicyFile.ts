import { stat } from 'node:fs/promises';
import { fileStamp } from '@flotilla/trust';
import type { Logger } from '@flotilla/telemetry';
import { AccessPolicy } from './AccessPolicy.js';

/** Outcome of reading the policy file again: `ok` (in force now) or `invalid` (the previous one stays). */
export type PolicyReloadResult = 'ok' | 'invalid';

/** What a {@link PolicyFile} needs. */
export interface PolicyFileDeps {
  readonly path: string;
  readonly logger: Logger;
  /** Checks the file at most this often, ms (default 2000). */
  readonly reloadEveryMs?: number;
  /** Hears every reload attempt of a changed file (metrics). */
  onReload?(result: PolicyReloadResult): void;
  /** A new policy is in force. */
  onChange?(policy: AccessPolicy): void;
}

/**
 * The access policy file, read at start (a bad file stops the router) and read again when it changes
 * (its {@link fileStamp}, checked every `reloadEveryMs`, and before a request uses the policy once that long has
 * passed), like the API key file. A changed file that does not parse or check leaves the policy last read in force: the error,
 * naming the field, is logged once per change, and counted.
 */
export class PolicyFile {
  private policy: AccessPolicy;
  /** The file's {@link fileStamp} when last read; undefined while it cannot be read. */
  private stamp: string | undefined;
  private checkedAt = Date.now();
  private reloading: Promise<void> | undefined;
  private readonly reloadEveryMs: number;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly deps: PolicyFileDeps, policy: AccessPolicy, stamp: string | undefined) {
    this.policy = policy;
    this.stamp = stamp;
    this.reloadEveryMs = deps.reloadEveryMs ?? 2000;
    // A change is picked up (and a broken file reported) even while no request comes.
    this.timer = setInterval(() => void this.current(), this.reloadEveryMs);
    this.timer.unref();
  }

  /** Stops checking the file. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Reads the policy file; throws a message naming the file and each wrong field. */
  static async load(deps: PolicyFileDeps): Promise<PolicyFile> {
    const stamp = await stat(deps.path).then(fileStamp, () => undefined);
    return new PolicyFile(deps, await AccessPolicy.load(deps.path), stamp);
  }

  /** The policy in force (read again first when the file may have changed). */
  async current(now = Date.now()): Promise<AccessPolicy> {
    if (now - this.checkedAt >= this.reloadEveryMs) {
      this.reloading ??= this.reload().finally(() => (this.reloading = undefined));
      await this.reloading;
    }
    return this.policy;
  }

  private async reload(): Promise<void> {
    this.checkedAt = Date.now();
    const { path, logger } = this.deps;
    let stamp: string;
    try {
      stamp = fileStamp(await stat(path));
    } catch (err) {
      if (this.stamp !== undefined) {
        this.stamp = undefined;
        this.deps.onReload?.('invalid');
        logger.error({ file: path, err: (err as Error).message }, 'cannot read the access policy file; the policy last read stays in force');
      }
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      this.policy = await AccessPolicy.load(path);
    } catch (err) {
      this.deps.onReload?.('invalid');
      logger.error({ file: path, error: (err as Error).message }, 'access policy file is invalid; the policy last read stays in force');
      return;
    }
    this.deps.onReload?.('ok');
    logger.info({ file: path }, 'access policy reloaded');
    this.deps.onChange?.(this.policy);
  }
}
