import { grpc, grpcHealthServiceDefinition } from '../../packages/registry/test/support/testDeps.js';

/** Outcome of one gRPC health check, as Consul reports it. */
export interface GrpcProbeResult {
  status: 'passing' | 'critical';
  output: string;
}

interface HealthCheckClient extends grpc.Client {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: { status?: string }) => void,
  ): grpc.ClientUnaryCall;
}

const HealthClient = grpc.makeClientConstructor(grpcHealthServiceDefinition, 'grpc.health.v1.Health') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => HealthCheckClient;

/**
 * Runs real grpc.health.v1 `Check` calls against one target (`host:port` or `host:port/service`, Consul's
 * GRPC check syntax), like Consul's gRPC check: SERVING is passing, anything else or an error is critical.
 */
export class GrpcHealthProbe {
  private readonly client: HealthCheckClient;
  private readonly service: string;

  constructor(readonly target: string) {
    const slash = target.indexOf('/');
    const address = slash >= 0 ? target.slice(0, slash) : target;
    this.service = slash >= 0 ? target.slice(slash + 1) : '';
    this.client = new HealthClient(address, grpc.credentials.createInsecure());
  }

  check(timeoutMs: number): Promise<GrpcProbeResult> {
    return new Promise((resolve) => {
      this.client.Check({ service: this.service }, { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) return resolve({ status: 'critical', output: `gRPC check ${this.target}: failed: rpc error: code = ${grpc.status[err.code] ?? err.code} desc = ${err.details}` });
        if (response?.status !== 'SERVING') return resolve({ status: 'critical', output: `gRPC ${this.target} serving status: ${response?.status ?? 'UNKNOWN'}` });
        resolve({ status: 'passing', output: `gRPC check ${this.target}: success` });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
