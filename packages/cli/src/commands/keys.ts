import { Command } from 'commander';
import { addApiKeyCommands } from './apiKeys.js';
import { addMeshKeyCommands } from './meshKeys.js';

/** `flotilla keys`: the mesh's NKeys and node credentials (gen, issue, init), and the router's API keys (create, revoke). */
export function keysCommand(): Command {
  const keys = new Command('keys').description("make the mesh's keys and node credentials (gen, issue, init) and manage the router's API keys (create, revoke)");
  return addApiKeyCommands(addMeshKeyCommands(keys));
}
