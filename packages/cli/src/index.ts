export { formatNodes } from './commands/nodes.js';
export { parseServerSpec, parseToolArg } from './options.js';
