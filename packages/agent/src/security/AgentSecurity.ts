import { ControlAuthenticator, KeyList, MeshTokenVerifier, SignatureVerifier, Signer, signRecord, type ReceivedControl } from '@flotilla/trust';
import type { NodeRecord } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { AgentSecurityOptions } from './AgentSecurityOptions.js';

/** The node's signing identity: its key and credential, as put in its record. */
export interface NodeIdentityKeys {
  readonly nodeKey: string;
  readonly credential: string;
}

/**
 * The agent's security parts, built from {@link AgentSecurityOptions}: the node signer (records and
 * reports), the control-request authenticator, the mesh-token verifier for MCP requests. Each is undefined
 * when not configured, which {@link summary} reports.
 */
export class AgentSecurity {
  readonly signer: Signer | undefined;
  readonly identity: NodeIdentityKeys | undefined;
  readonly control: ControlAuthenticator | undefined;
  readonly mesh: MeshTokenVerifier | undefined;
  readonly openMetrics: boolean;

  constructor(deps: { options: AgentSecurityOptions; nodeId: string; audience: () => string; logger: Logger }) {
    const { options, logger } = deps;
    if ((options.nodeSeed === undefined) !== (options.nodeCredential === undefined)) {
      throw new Error('invalid agent options: a node seed needs its credential, and a credential its seed');
    }
    if (options.nodeSeed !== undefined && options.nodeCredential !== undefined) {
      this.signer = new Signer(options.nodeSeed);
      this.identity = { nodeKey: this.signer.publicKey, credential: options.nodeCredential.trim() };
    }
    const verifier = new SignatureVerifier(64);
    const keyList = (what: string, inline: string[] | undefined, file: string | undefined): KeyList =>
      new KeyList({
        ...(inline ? { inline } : {}),
        ...(file ? { file } : {}),
        onReload: (keys) => logger.info({ file, keys: keys.length }, `${what} reloaded`),
        onError: (err) => logger.error({ err, file }, `cannot reload ${what}; keeping the previous keys`),
      });
    const operators = keyList('operator keys', options.operatorKeys, options.operatorKeysFile);
    if (operators.configured) this.control = new ControlAuthenticator({ operators: () => operators.current(), verifier, nodeId: deps.nodeId });
    const meshKeys = keyList('mesh keys', options.meshKeys, options.meshKeysFile);
    if (meshKeys.configured) {
      this.mesh = new MeshTokenVerifier({ keys: () => meshKeys.current(), refreshKeys: () => meshKeys.refresh(), audience: deps.audience });
    }
    this.openMetrics = options.openMetrics === true;
  }

  /** Signs a NATS message (the subject is the context); undefined when the node has no key. */
  signMessage(subject: string, payload: Uint8Array): string | undefined {
    return this.signer?.sign(subject, payload);
  }

  /** Signs a registry record; undefined without a key. */
  signRecord(record: NodeRecord): string | undefined {
    return this.signer ? signRecord(this.signer, record) : undefined;
  }

  /** Why a control request is refused, or undefined when it may run (always, without operator keys). */
  checkControl(received: ReceivedControl): string | undefined {
    return this.control?.check(received);
  }

  /** What is on and off, for the start log. */
  summary(): { signing: string; control: string; mcp: string; open: string[] } {
    const open: string[] = [];
    if (!this.signer) open.push('records and reports are unsigned (routers accept them only when opted out)');
    if (!this.control) open.push('control requests (drain, status) are not authenticated: anyone who can publish on the control subject drains this node');
    if (!this.mesh) open.push('MCP endpoints accept any caller, not only the mesh');
    return {
      signing: this.signer ? `node key ${this.signer.publicKey}` : 'off',
      control: this.control ? 'operator-signed requests only' : 'open',
      mcp: this.mesh ? 'mesh tokens required' : 'open',
      open,
    };
  }
}
