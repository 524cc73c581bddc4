import type { Stats } from 'node:fs';

/**
 * What says a file changed: its modification time, size and inode. The mtime alone misses a change made
 * within one tick of the kernel's coarse file clock (a few ms), which a file replaced twice in a row
 * (write a temporary file, rename it over) easily is; the rename gives it a new inode.
 */
export function fileStamp(stats: Pick<Stats, 'mtimeMs' | 'size' | 'ino'>): string {
  return `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
}
