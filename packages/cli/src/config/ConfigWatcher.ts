import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '@flotilla/telemetry';

/** What {@link ConfigWatcher} needs. */
export interface ConfigWatcherDeps {
  /** Absolute path of the config file. */
  readonly file: string;
  readonly logger: Logger;
  /** Reads and applies the file again; called once per burst of changes, never twice at once. */
  reload(): Promise<void>;
  /** Quiet time after the last change before reloading, ms (editors write in several steps). */
  readonly debounceMs?: number;
}

/**
 * Reloads a config file when it changes: watches its directory (editors often replace the file rather
 * than write it in place), waits for the writes to settle, and runs one reload at a time (a change during
 * a reload reloads once more after it). SIGHUP reloads too.
 */
export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private readonly onHup = (): void => this.schedule(0);

  constructor(private readonly deps: ConfigWatcherDeps) {}

  start(): void {
    const name = basename(this.deps.file);
    this.watcher = watch(dirname(this.deps.file), (event, filename) => {
      this.deps.logger.debug({ event, filename }, 'config directory event');
      if (filename === null || filename === name) this.schedule(this.deps.debounceMs ?? 200);
    });
    this.watcher.on('error', (err) => this.deps.logger.warn({ err, file: this.deps.file }, 'cannot watch the config file; send SIGHUP to reload it'));
    process.on('SIGHUP', this.onHup);
    this.deps.logger.info({ file: this.deps.file }, 'watching the config file for changes');
  }

  stop(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    process.off('SIGHUP', this.onHup);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.deps.logger.debug({ file: this.deps.file }, 'reloading the config file');
    try {
      await this.deps.reload();
    } catch (err) {
      this.deps.logger.error({ err, file: this.deps.file }, 'config reload failed');
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    }
  }
}
