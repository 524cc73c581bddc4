import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

/**
 * The agent's `grpc.health.v1.Health` service (Check and Watch), for Consul gRPC checks and Kubernetes
 * probes: service `""` is the node as a whole, and each hosted server has its own service name.
 */
export class GrpcHealthServer {
  private readonly statuses = new Map<string, ServingStatus>();

  private constructor(
    private readonly server: grpc.Server,
    private readonly health: HealthImplementation,
    /** Port the service listens on. */
    readonly port: number,
  ) {}

  /** Binds on `host:port` (0 = any free port); every service starts NOT_SERVING. */
  static async start(host: string, port: number, services: readonly string[]): Promise<GrpcHealthServer> {
    const initial = Object.fromEntries(['', ...services].map((s) => [s, 'NOT_SERVING' as ServingStatus]));
    const health = new HealthImplementation(initial);
    const server = new grpc.Server();
    health.addToServer(server);
    const bindHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${bindHost}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    const instance = new GrpcHealthServer(server, health, bound);
    for (const [s, status] of Object.entries(initial)) instance.statuses.set(s, status);
    return instance;
  }

  /** Sets a service's status; Watch streams see the change (only real changes are sent). */
  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    this.health.setStatus(service, status);
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Stops accepting calls and ends open Watch streams. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
