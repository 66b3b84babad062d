/**
 * The gRPC server bootstrap every Skein service uses: grpc.health.v1 (overall and per service),
 * server reflection (so `grpcurl list/describe` work without .proto files), optional TLS/mTLS
 * from PEM files, per-RPC Prometheus metrics, error mapping through errors.ts, and a graceful
 * shutdown that reports NOT_SERVING, drains in-flight calls for a grace period, then forces.
 * Handlers are written as async functions through `unary`/`serverStreaming`/`bidiStreaming`.
 */

import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { fileDescriptorProtos } from '@skein/proto';
import type { Logger } from 'pino';
import { toServiceError } from './errors.js';
import type { MetricsRegistry } from './metrics.js';

export interface ServiceRegistration {
  /** Full service name, e.g. skein.metadata.v1.MetadataService. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface TlsOptions {
  certFile: string;
  keyFile: string;
  caFile?: string;
  requireClientCert?: boolean;
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  services: ServiceRegistration[];
  tls?: TlsOptions;
  logger: Logger;
  metrics?: MetricsRegistry;
  maxReceiveMessageBytes?: number;
}

export interface GrpcServerHandle {
  port: number;
  server: grpc.Server;
  setServing(serviceName: string, serving: boolean): void;
  shutdown(graceMs: number): Promise<void>;
}

type Handler = (...args: never[]) => unknown;

/** Wraps each handler: records per-RPC metrics, and turns thrown errors into statuses with details. */
function instrument(reg: ServiceRegistration, logger: Logger, metrics?: MetricsRegistry): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, impl] of Object.entries(reg.implementation)) {
    const def = reg.definition[method];
    const rpcName = def?.path.split('/').pop() ?? method;
    const observe = (code: grpc.status, startNs: bigint) => {
      metrics?.rpcHandled.inc({ service: reg.name, method: rpcName, code: grpc.status[code] ?? String(code) });
      metrics?.rpcSeconds.observe({ service: reg.name, method: rpcName }, Number(process.hrtime.bigint() - startNs) / 1e9);
    };
    const onUnexpected = (err: unknown) => logger.error({ err, rpc: `${reg.name}/${rpcName}` }, 'unexpected error in RPC handler');
    if (def && !def.requestStream && !def.responseStream) {
      out[method] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const start = process.hrtime.bigint();
        (impl as Handler as (c: unknown, cb: grpc.sendUnaryData<unknown>) => void)(call, (err, value, trailer, flags) => {
          if (err) {
            const status = toServiceError(err, onUnexpected);
            observe(status.code, start);
            callback(status, null);
          } else {
            observe(grpc.status.OK, start);
            callback(null, value, trailer, flags);
          }
        });
      }) as grpc.UntypedHandleCall;
    } else {
      out[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
        const start = process.hrtime.bigint();
        let done = false;
        const finish = (code: grpc.status) => { if (!done) { done = true; observe(code, start); } };
        call.on('finish', () => finish(grpc.status.OK));
        call.on('cancelled', () => finish(grpc.status.CANCELLED));
        call.on('error', () => finish(grpc.status.UNKNOWN));
        (impl as Handler as (c: unknown) => void)(call);
      }) as grpc.UntypedHandleCall;
    }
  }
  return out;
}

/** An async unary handler; errors (thrown or rejected) become statuses with details. */
export function unary<Req, Res>(fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then((res) => callback(null, res), (err: unknown) => callback(err as grpc.ServiceError, null));
  };
}

function failStream(call: { destroy(err?: Error): void; emit(event: string, ...args: unknown[]): boolean }, err: unknown): void {
  const status = toServiceError(err);
  const e = Object.assign(new Error(status.details), status);
  call.emit('error', e);
}

export function serverStreaming<Req, Res>(fn: (call: grpc.ServerWritableStream<Req, Res>) => Promise<void>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    fn(call).then(() => { if (!call.writableEnded) call.end(); }, (err: unknown) => failStream(call, err));
  };
}

export function bidiStreaming<Req, Res>(fn: (call: grpc.ServerDuplexStream<Req, Res>) => Promise<void>): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    fn(call).then(() => { if (!call.writableEnded) call.end(); }, (err: unknown) => failStream(call, err));
  };
}

export function serverCredentials(tls?: TlsOptions): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.caFile ? readFileSync(tls.caFile) : null,
    [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
    tls.requireClientCert ?? false,
  );
}

/**
 * Adds grpc.health.v1 (with the given initial statuses) and server reflection to a server (for
 * services that build their own grpc.Server). Reflection lists the services in `statuses` plus
 * Health, and describes them from the descriptors buf compiled (libs/proto), so grpcurl and other
 * reflection clients resolve every import and map type.
 */
export function addHealthAndReflection(server: grpc.Server, statuses: Record<string, 'SERVING' | 'NOT_SERVING'>): HealthImplementation {
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  const listed = [...Object.keys(statuses).filter((name) => name !== ''), 'grpc.health.v1.Health'];
  // ReflectionService reads only `fileDescriptorProtos` from a package definition's entries.
  const descriptors = { 'skein.descriptors': { fileDescriptorProtos: fileDescriptorProtos() } } as unknown as protoLoader.PackageDefinition;
  new ReflectionService(descriptors, { services: listed }).addToServer(server);
  return health;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 64 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
  });
  for (const reg of options.services) server.addService(reg.definition, instrument(reg, options.logger, options.metrics));

  const statuses: Record<string, 'SERVING' | 'NOT_SERVING'> = { '': 'SERVING' };
  for (const reg of options.services) statuses[reg.name] = 'SERVING';
  const health = addHealthAndReflection(server, statuses);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, serverCredentials(options.tls), (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  return {
    port,
    server,
    setServing(serviceName, serving) {
      const status = serving ? 'SERVING' : 'NOT_SERVING';
      if (serviceName === '') for (const name of Object.keys(statuses)) health.setStatus(name, status);
      else health.setStatus(serviceName, status);
    },
    async shutdown(graceMs) {
      for (const name of Object.keys(statuses)) health.setStatus(name, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn({ graceMs }, 'in-flight calls did not finish in time; forcing shutdown');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
