import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** One static file of the dashboard page, held in memory. */
export interface DashboardAsset {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong validator: the page is re-fetched only when it changed. */
  readonly etag: string;
}

/** The files, by the path they are served at. */
export const DASHBOARD_ASSET_FILES = {
  '/dashboard': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.css': { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' },
  '/dashboard/dashboard.js': { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' },
} as const;

export type DashboardAssetPath = keyof typeof DASHBOARD_ASSET_FILES;

/**
 * Where the page's files are: `packages/router/assets/dashboard/`, plain HTML, CSS and JavaScript with no
 * build step. This module sits at the same depth under `src/` (tsx) and `dist/` (built), so one relative
 * URL finds them from both.
 */
export const DASHBOARD_ASSETS_DIR = new URL('../../../assets/dashboard/', import.meta.url);

/** Reads every file of the page once (a few kB); throws naming the file when one is missing. */
export async function loadDashboardAssets(dir: URL = DASHBOARD_ASSETS_DIR): Promise<ReadonlyMap<DashboardAssetPath, DashboardAsset>> {
  const entries = await Promise.all(
    (Object.entries(DASHBOARD_ASSET_FILES) as Array<[DashboardAssetPath, { file: string; contentType: string }]>).map(async ([path, { file, contentType }]) => {
      const body = await readFile(new URL(file, dir));
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      return [path, { body, contentType, etag }] as const;
    }),
  );
  return new Map(entries);
}

/** Is `path` one of the page's files? */
export function isDashboardAssetPath(path: string): path is DashboardAssetPath {
  return Object.hasOwn(DASHBOARD_ASSET_FILES, path);
}
