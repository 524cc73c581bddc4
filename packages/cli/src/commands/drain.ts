import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { ControlReplySchema, PROTOCOL_VERSION, decodeJson, encodeJson, subjects, type ControlRequest } from '@flotilla/protocol';
import { Signer, describeNats, readSeedFile, signControlRequest } from '@flotilla/trust';
import { connectForCommand } from '../natsConnection.js';
import { env, parsePositiveInt } from '../options.js';
import { natsSettingsOf, withNatsFlags, type NatsFlags } from '../security/natsFlags.js';

/** The operator seed `flotilla up` made in this directory, if any. */
function localOperatorSeed(): string | undefined {
  const path = join('.flotilla', 'keys', 'operator.nk');
  return existsSync(path) ? path : undefined;
}

/** `flotilla drain <node>`: stop new calls to a node, let in-flight ones finish, then it deregisters. */
export function drainCommand(): Command {
  return withNatsFlags(new Command('drain')
    .description('drain a node: no new calls, in-flight calls finish within the grace period, then it deregisters')
    .argument('<node>', 'node id')
    .option('--grace <ms>', 'grace period for in-flight calls', parsePositiveInt)
    .option('--nats <url>', 'NATS server URL', env.natsUrl)
    .option('--prefix <prefix>', 'NATS subject prefix', env.prefix)
    .option('--operator-seed-file <file>', 'operator NKey seed that signs the request (FLOTILLA_OPERATOR_SEED_FILE; default: the local mesh\'s .flotilla/keys/operator.nk when present); nodes with operator keys refuse unsigned requests', process.env.FLOTILLA_OPERATOR_SEED_FILE ?? localOperatorSeed())
    .action(async (node: string, o: { grace?: number; prefix: string; operatorSeedFile?: string } & NatsFlags) => {
      const settings = natsSettingsOf(o);
      const signer = o.operatorSeedFile ? new Signer(readSeedFile(o.operatorSeedFile)) : undefined;
      const nc = await connectForCommand(settings);
      try {
        const request: ControlRequest = { v: PROTOCOL_VERSION, op: 'drain', ...(o.grace ? { graceMs: o.grace } : {}) };
        const subject = subjects(o.prefix).control(node);
        const signed = signer ? signControlRequest(signer, subject, node, request) : undefined;
        const h = natsHeaders();
        for (const [k, v] of Object.entries(signed?.headers ?? {})) h.set(k, v);
        let reply;
        try {
          reply = await nc.request(subject, signed?.payload ?? encodeJson(request), { timeout: 5000, ...(signed ? { headers: h } : {}) });
        } catch (err) {
          throw new Error(`node "${node}" did not answer the drain request (${(err as Error).message}); is it running and connected to ${describeNats(settings).servers}?`);
        }
        const decoded = decodeJson(ControlReplySchema, reply.data);
        if (!decoded.ok) throw new Error(`node "${node}" sent an invalid reply: ${decoded.error}`);
        const r = decoded.value;
        if (!r.ok) throw new Error(`node "${node}" refused to drain: ${r.error ?? 'no reason given'}`);
        process.stdout.write(`node ${r.nodeId} draining: ${r.inflight} in flight, ${r.queued} queued; it deregisters when they finish\n`);
      } finally {
        await nc.close();
      }
    }));
}
