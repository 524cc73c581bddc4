import { Command } from 'commander';
import { ControlReplySchema, PROTOCOL_VERSION, decodeJson, encodeJson, subjects, type ControlRequest } from '@flotilla/protocol';
import { connectForCommand } from '../natsConnection.js';
import { env, parsePositiveInt } from '../options.js';

/** `flotilla drain <node>`: stop new calls to a node, let in-flight ones finish, then it deregisters. */
export function drainCommand(): Command {
  return new Command('drain')
    .description('drain a node: no new calls, in-flight calls finish within the grace period, then it deregisters')
    .argument('<node>', 'node id')
    .option('--grace <ms>', 'grace period for in-flight calls', parsePositiveInt)
    .option('--nats <url>', 'NATS server URL', env.natsUrl)
    .option('--prefix <prefix>', 'NATS subject prefix', env.prefix)
    .action(async (node: string, o: { grace?: number; nats: string; prefix: string }) => {
      const nc = await connectForCommand(o.nats);
      try {
        const request: ControlRequest = { v: PROTOCOL_VERSION, op: 'drain', ...(o.grace ? { graceMs: o.grace } : {}) };
        let reply;
        try {
          reply = await nc.request(subjects(o.prefix).control(node), encodeJson(request), { timeout: 5000 });
        } catch (err) {
          throw new Error(`node "${node}" did not answer the drain request (${(err as Error).message}); is it running and connected to ${o.nats}?`);
        }
        const decoded = decodeJson(ControlReplySchema, reply.data);
        if (!decoded.ok) throw new Error(`node "${node}" sent an invalid reply: ${decoded.error}`);
        const r = decoded.value;
        if (!r.ok) throw new Error(`node "${node}" refused to drain: ${r.error ?? 'no reason given'}`);
        process.stdout.write(`node ${r.nodeId} draining: ${r.inflight} in flight, ${r.queued} queued; it deregisters when they finish\n`);
      } finally {
        await nc.close();
      }
    });
}
