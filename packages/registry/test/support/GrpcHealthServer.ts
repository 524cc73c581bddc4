import { HealthImplementation, grpc, type ServingStatus } from './testDeps.js';

/**
 * A real grpc.health.v1 server (grpc-health-check's HealthImplementation on @grpc/grpc-js) on a loopback
 * port, standing in for an agent's health service in registry tests.
 */
export class GrpcHealthServer {
  private constructor(
    private readonly server: grpc.Server,
    private readonly health: HealthImplementation,
    /** host:port to register as the node's `healthAddress`. */
    readonly address: string,
  ) {}

  /**
   * Starts a server whose overall status (service "") is SERVING, bound to `bindHost` on a free port.
   * `advertiseHost` is the host put in `address`, for a Consul that reaches this machine by another name.
   */
  static async start(options: { bindHost?: string; advertiseHost?: string } = {}): Promise<GrpcHealthServer> {
    const bindHost = options.bindHost ?? '127.0.0.1';
    const server = new grpc.Server();
    const health = new HealthImplementation({ '': 'SERVING' });
    health.addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${bindHost}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return new GrpcHealthServer(server, health, `${options.advertiseHost ?? bindHost}:${port}`);
  }

  /** Sets the overall serving status, e.g. NOT_SERVING to fail Consul's gRPC check. */
  setStatus(status: ServingStatus): void {
    this.health.setStatus('', status);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
