import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const require = createRequire(import.meta.url);

/** The name under which `flotilla up` mounts a third-party stdio server (its tools are `files_*`). */
export const LOCAL_MESH_MOUNT = 'files';
/** The npm package of that server: a pinned dependency of the cli, so it runs with no network. */
export const LOCAL_MESH_MOUNT_PACKAGE = '@modelcontextprotocol/server-filesystem';

const BinManifestSchema = z.object({ bin: z.union([z.string(), z.record(z.string(), z.string())]) });

/** The installed bin script of the mount's package, resolved from node_modules (never fetched). */
export function localMeshMountBin(): string {
  const manifestPath = require.resolve(`${LOCAL_MESH_MOUNT_PACKAGE}/package.json`);
  const { bin } = BinManifestSchema.parse(require(manifestPath));
  const script = typeof bin === 'string' ? bin : Object.values(bin)[0];
  if (!script) throw new Error(`${LOCAL_MESH_MOUNT_PACKAGE} names no bin script`);
  return join(dirname(manifestPath), script);
}

/**
 * Writes the local mesh's servers.json (the standard `mcpServers` shape) under `dir`: the filesystem
 * server run by this Node.js on `dir/files`, one process shared by every client session (it keeps no
 * per-session state). Returns the config file and the directory the server may read and write.
 */
export async function writeLocalMeshServers(dir: string): Promise<{ config: string; files: string }> {
  const files = join(dir, 'files');
  await mkdir(files, { recursive: true });
  await writeFile(
    join(files, 'hello.txt'),
    `This file is served by ${LOCAL_MESH_MOUNT_PACKAGE}, a stdio MCP server that two agents of the local mesh mount as "${LOCAL_MESH_MOUNT}".\n`,
  );
  const config = join(dir, 'servers.json');
  const servers = { mcpServers: { [LOCAL_MESH_MOUNT]: { command: process.execPath, args: [localMeshMountBin(), files] } } };
  await writeFile(config, `${JSON.stringify(servers, null, 2)}\n`);
  return { config, files };
}
