import { readPublicKeysFile } from './readKeyFile.js';
import { ReloadingFile } from './ReloadingFile.js';

/** What {@link KeyList} needs. */
export interface KeyListDeps {
  /** Keys given inline (flags, options). */
  inline?: readonly string[];
  /** A file of keys, re-read when it changes. */
  file?: string;
  onReload?: (keys: readonly string[]) => void;
  onError?: (err: Error) => void;
}

/**
 * A set of public keys from inline values and, optionally, a file re-read when it changes (checked at most
 * once a second, or at once through {@link refresh}): adding and removing keys needs no restart. A file
 * that cannot be read at start throws; a later bad version keeps the previous keys.
 */
export class KeyList {
  private readonly file: ReloadingFile<string[]> | undefined;
  private readonly inline: readonly string[];
  private merged: ReadonlySet<string>;
  private mergedFrom: string[] | undefined;

  constructor(deps: KeyListDeps) {
    this.inline = deps.inline ?? [];
    this.file = deps.file
      ? new ReloadingFile({ path: deps.file, load: readPublicKeysFile, ...(deps.onReload ? { onReload: deps.onReload } : {}), ...(deps.onError ? { onError: deps.onError } : {}) })
      : undefined;
    this.merged = new Set(this.inline);
    this.current();
  }

  /** Whether any key source was configured. */
  get configured(): boolean {
    return this.inline.length > 0 || this.file !== undefined;
  }

  current(): ReadonlySet<string> {
    return this.merge(this.file?.current());
  }

  /** Checks the file now (e.g. a token named an unknown key: the file may just have changed). */
  refresh(): ReadonlySet<string> {
    return this.merge(this.file?.current(true));
  }

  private merge(fromFile: string[] | undefined): ReadonlySet<string> {
    if (fromFile !== this.mergedFrom) {
      this.mergedFrom = fromFile;
      this.merged = new Set([...this.inline, ...(fromFile ?? [])]);
    }
    return this.merged;
  }
}
