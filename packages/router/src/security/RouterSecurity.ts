import { KeyList, MeshTokenIssuer, NodeRecordTrust, ReloadingFile, SignatureVerifier, keyFromSeed, readSeedFile, type SeedKey } from '@flotilla/trust';
import type { Logger } from '@flotilla/telemetry';
import type { DiscoveryTrust } from '../discovery/MeshDiscovery.js';
import { NodeKeyDirectory } from '../discovery/NodeKeyDirectory.js';
import { ReportGate } from '../discovery/ReportGate.js';
import type { MeshCredentialProvider } from '../upstream/McpHttpChannel.js';
import { MeshTokenCredentials } from './MeshTokenCredentials.js';
import type { RouterSecurityOptions } from './RouterSecurityOptions.js';

/**
 * The router's security parts, built from {@link RouterSecurityOptions}: which registry records it accepts
 * (and the accepted nodes' keys for report checks), and the mesh credential it sends agents.
 */
export class RouterSecurity {
  readonly discovery: DiscoveryTrust;
  readonly reports: ReportGate;
  readonly credentials: MeshCredentialProvider | undefined;
  private readonly allowUnsigned: boolean;
  private readonly issuerCount: () => number;
  private readonly meshKey: (() => SeedKey) | undefined;

  /** `replica`: this router replica's tag, named in the mesh tokens it sends. */
  constructor(options: RouterSecurityOptions, logger: Logger, replica?: string) {
    const issuers = new KeyList({
      ...(options.issuers ? { inline: options.issuers } : {}),
      ...(options.issuersFile ? { file: options.issuersFile } : {}),
      onReload: (keys) => logger.info({ file: options.issuersFile, keys: keys.length }, 'trusted issuers reloaded'),
      onError: (err) => logger.error({ err, file: options.issuersFile }, 'cannot reload the trusted issuers; keeping the previous ones'),
    });
    this.allowUnsigned = options.allowUnsigned ?? !issuers.configured;
    this.issuerCount = () => issuers.current().size;
    const verifier = new SignatureVerifier();
    const keys = new NodeKeyDirectory();
    const policy = new NodeRecordTrust({ policy: { issuers: () => issuers.current(), allowUnsigned: this.allowUnsigned }, verifier });
    this.discovery = {
      policy: {
        check: (node) => {
          const verdict = policy.check(node.record, node.proof);
          return verdict.ok ? { ok: true, nodeKey: verdict.nodeKey ?? null } : verdict;
        },
        forget: (nodeId) => policy.forget(nodeId),
      },
      keys,
    };
    this.reports = new ReportGate({ keys, verifier });
    this.meshKey = meshKeySource(options, logger);
    this.credentials = this.meshKey ? new MeshTokenCredentials(new MeshTokenIssuer({ key: this.meshKey, ...(replica !== undefined ? { replica } : {}) })) : undefined;
  }

  /** Logs what is on and, loudly, what is off. */
  logSummary(logger: Logger): void {
    const records = this.issuerCount() === 0 ? 'any (no trusted issuers)' : `signed by a node credential from ${this.issuerCount()} trusted issuer(s)${this.allowUnsigned ? ', or unsigned (opt-out)' : ''}`;
    const mesh = this.meshKey ? `mesh tokens signed by ${this.meshKey().publicKey}` : 'none';
    logger.info({ records, mesh }, 'security');
    if (this.allowUnsigned) logger.warn('security off: unsigned node records and reports are accepted (opt-out): anyone who can write the registry or publish reports can steer this router');
    if (!this.meshKey) logger.warn('security off: no mesh key; agents that require mesh tokens will refuse this router');
  }
}

/** The mesh key: a seed given inline, or a seed file re-read when it changes; undefined when neither. */
function meshKeySource(options: RouterSecurityOptions, logger: Logger): (() => SeedKey) | undefined {
  if (options.meshSeed !== undefined) {
    const key = keyFromSeed(options.meshSeed);
    return () => key;
  }
  const file = options.meshSeedFile;
  if (file === undefined) return undefined;
  const source = new ReloadingFile({
    path: file,
    load: (path) => keyFromSeed(readSeedFile(path)),
    onReload: (key) => logger.info({ file, key: key.publicKey }, 'mesh key reloaded; new tokens are signed with it'),
    onError: (err) => logger.error({ err, file }, 'cannot reload the mesh key; keeping the previous one'),
  });
  return () => source.current();
}
