/**
 * Promise-returning gRPC clients for tests, built from the generated ts-proto client classes.
 * `unaryCall(client.createTopic, client)(request)` keeps full typing of request and response.
 */

import * as grpc from '@grpc/grpc-js';
import { fromServiceError, type SkeinError } from '@skein/common/errors.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';

type UnaryMethod<Req, Res> = (request: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

export type Promisified<C> = {
  [K in keyof C as C[K] extends UnaryMethod<infer _Req, infer _Res> ? K : never]: C[K] extends UnaryMethod<infer Req, infer Res>
    ? (request: Req, options?: { deadlineMs?: number }) => Promise<Res>
    : never;
};

/** Wraps every unary method; rejections are SkeinErrors decoded from the status details. */
export function promisify<C extends grpc.Client>(client: C): Promisified<C> & { raw: C; close(): void } {
  return new Proxy({} as Promisified<C> & { raw: C; close(): void }, {
    get(_target, prop: string) {
      if (prop === 'raw') return client;
      if (prop === 'close') return () => client.close();
      const method = (client as unknown as Record<string, unknown>)[prop];
      if (typeof method !== 'function') return undefined;
      return (request: unknown, options?: { deadlineMs?: number }) =>
        new Promise((resolve, reject) => {
          const deadline = Date.now() + (options?.deadlineMs ?? 10_000);
          (method as UnaryMethod<unknown, unknown>).call(client, request, new grpc.Metadata(), { deadline }, (err, res) => {
            if (err) reject(fromServiceError(err));
            else resolve(res);
          });
        });
    },
  });
}

export function metadataClient(address: string) {
  return promisify(new MetadataServiceClient(address, grpc.credentials.createInsecure()));
}

/** Awaits a rejected promise and returns its SkeinError (fails the test if it resolved). */
export async function rejection(promise: Promise<unknown>): Promise<SkeinError> {
  try {
    await promise;
  } catch (err) {
    return err as SkeinError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

export function brokerClient(address: string) {
  return promisify(new BrokerServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 }));
}
