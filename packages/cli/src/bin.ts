#!/usr/bin/env node
import { Command } from 'commander';
import { agentCommand } from './commands/agent.js';
import { callCommand } from './commands/call.js';
import { drainCommand } from './commands/drain.js';
import { keysCommand } from './commands/keys.js';
import { nodesCommand } from './commands/nodes.js';
import { routerCommand } from './commands/router.js';
import { toolsCommand } from './commands/tools.js';
import { upCommand } from './commands/up.js';

const program = new Command('flotilla')
  .description('Flotilla: a distributed MCP orchestration mesh')
  .version('0.1.0')
  .addCommand(upCommand())
  .addCommand(routerCommand())
  .addCommand(agentCommand())
  .addCommand(nodesCommand())
  .addCommand(toolsCommand())
  .addCommand(callCommand())
  .addCommand(drainCommand())
  .addCommand(keysCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`flotilla: ${(err as Error).message}\n`);
  process.exit(1);
});
