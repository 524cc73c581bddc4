import { statSync } from 'node:fs';
import { fileStamp } from './fileStamp.js';

/** What {@link ReloadingFile} needs. */
export interface ReloadingFileDeps<T> {
  path: string;
  /** Reads and parses the file; throws when it is unusable. */
  load: (path: string) => T;
  /** Least time between two checks of the file's modification time, ms (default 1000). */
  checkEveryMs?: number;
  /** Told when a changed file could not be loaded (the previous value stays in use). */
  onError?: (err: Error) => void;
  /** Told when a changed file was loaded. */
  onReload?: (value: T) => void;
  now?: () => number;
}

/**
 * A value loaded from a file and loaded again when the file changes (its mtime or size), checked at most
 * once per `checkEveryMs` when the value is read: keys rotate by replacing the file, with no restart. The
 * first load throws; a later change that fails to load keeps the previous value and is reported.
 */
export class ReloadingFile<T> {
  private value: T;
  private stamp: string;
  private checkedAt: number;
  private readonly now: () => number;

  constructor(private readonly deps: ReloadingFileDeps<T>) {
    this.now = deps.now ?? Date.now;
    this.stamp = this.readStamp();
    this.value = deps.load(deps.path);
    this.checkedAt = this.now();
  }

  /** The current value, after a check of the file when the last one is `checkEveryMs` old (or `force`). */
  current(force = false): T {
    const now = this.now();
    if (force || now - this.checkedAt >= (this.deps.checkEveryMs ?? 1000)) {
      this.checkedAt = now;
      this.reloadIfChanged();
    }
    return this.value;
  }

  private reloadIfChanged(): void {
    let stamp: string;
    try {
      stamp = this.readStamp();
    } catch (err) {
      this.deps.onError?.(err as Error);
      return;
    }
    if (stamp === this.stamp) return;
    try {
      this.value = this.deps.load(this.deps.path);
      this.stamp = stamp;
      this.deps.onReload?.(this.value);
    } catch (err) {
      this.deps.onError?.(err as Error);
    }
  }

  private readStamp(): string {
    return fileStamp(statSync(this.deps.path));
  }
}
