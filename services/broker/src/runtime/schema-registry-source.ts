/**
 * Where the broker asks which subjects use a schema id (schema-validation.ts): the registry's gRPC
 * API (skein.schema.v1 GetSchemaUsages). The instances are `--schema-registry-addresses`, or, when
 * that is empty, those registered with the metadata service (FindServiceInstances,
 * SERVICE_ROLE_SCHEMA_REGISTRY), listed again every `rediscoverMs` and after every failure. Each
 * lookup tries the instances in turn; SCHEMA_NOT_FOUND is an answer (the id is unknown), any other
 * failure moves to the next instance, and when none answers the lookup rejects (the validator
 * then refuses the batch with UNAVAILABLE: fail closed).
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import { type GetSchemaUsagesResponse, SchemaRegistryServiceClient } from '@skein/proto/skein/schema/v1/schema.js';
import type { SchemaUsageSource } from './schema-validation.js';

export interface GrpcSchemaUsageSourceOptions {
  /** Fixed registry addresses host:port; empty: discovered with `discover`. */
  addresses: readonly string[];
  /** The registry instances the metadata service lists (host:port). */
  discover: () => Promise<string[]>;
  credentials: grpc.ChannelCredentials;
  /** Deadline of one lookup at one instance. */
  timeoutMs?: number;
  rediscoverMs?: number;
}

export class GrpcSchemaUsageSource implements SchemaUsageSource {
  private readonly clients = new Map<string, SchemaRegistryServiceClient>();
  private discovered: { addresses: string[]; atMs: number } | undefined;
  private next = 0;

  constructor(private readonly options: GrpcSchemaUsageSourceOptions) {}

  async subjectsOf(id: number): Promise<readonly string[] | undefined> {
    const addresses = await this.addresses();
    if (addresses.length === 0) throw new Error('no schema registry is registered with the metadata service (and no --schema-registry-addresses)');
    let last: unknown;
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[this.next++ % addresses.length]!;
      try {
        const res = await this.usages(address, id);
        return [...new Set(res.usages.map((u) => u.subject))];
      } catch (err) {
        if ((err as { reason?: string }).reason === 'SCHEMA_NOT_FOUND') return undefined;
        last = err;
      }
    }
    this.discovered = undefined;
    throw new Error(`no schema registry answered (${addresses.join(', ')}): ${(last as Error)?.message ?? 'unknown error'}`);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private async addresses(): Promise<string[]> {
    if (this.options.addresses.length > 0) return [...this.options.addresses];
    const now = Date.now();
    if (this.discovered && now - this.discovered.atMs < (this.options.rediscoverMs ?? 30_000)) return this.discovered.addresses;
    let found: string[];
    try {
      found = await this.options.discover();
    } catch (err) {
      throw new Error(`finding schema registries through the metadata service failed: ${(err as Error).message}`);
    }
    this.discovered = { addresses: found, atMs: now };
    for (const [a, c] of this.clients) {
      if (!found.includes(a)) {
        c.close();
        this.clients.delete(a);
      }
    }
    return found;
  }

  private usages(address: string, id: number): Promise<GetSchemaUsagesResponse> {
    let client = this.clients.get(address);
    if (!client) this.clients.set(address, (client = new SchemaRegistryServiceClient(address, this.options.credentials)));
    return new Promise((resolve, reject) => {
      client.getSchemaUsages({ id, includeDeleted: false }, new grpc.Metadata(), { deadline: Date.now() + (this.options.timeoutMs ?? 3_000) }, (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res),
      );
    });
  }
}
