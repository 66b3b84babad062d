/**
 * Calls through the generated (ts-proto, grpc-js) client stubs, typed end to end: a caller passes
 * the stub itself (`(c) => c.createTopic.bind(c)`), so the request and response types come from the
 * contract and a renamed or removed RPC fails to compile, where a method-name string failed at run
 * time.
 */
import * as grpc from '@grpc/grpc-js';

/** A generated unary stub in its (request, metadata, options, callback) form, the last overload ts-proto emits. */
export type UnaryStub<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls `stub` with a deadline `timeoutMs` from now; rejects with the raw grpc ServiceError. */
export function callUnary<Req, Res>(stub: UnaryStub<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    stub(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}
