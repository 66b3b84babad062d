import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { callUnary, type UnaryStub } from './rpc.js';

describe('callUnary', () => {
  it('passes the request, fresh metadata and a deadline timeoutMs ahead to the stub, and resolves its answer', async () => {
    const seen: Array<{ request: { name: string }; deadline: unknown }> = [];
    const stub: UnaryStub<{ name: string }, { ok: number }> = (request, metadata, options, callback) => {
      expect(metadata).toBeInstanceOf(grpc.Metadata);
      seen.push({ request, deadline: options.deadline });
      callback(null, { ok: 1 });
      return {} as grpc.ClientUnaryCall;
    };
    const before = Date.now();
    await expect(callUnary(stub, { name: 't' }, 10_000)).resolves.toEqual({ ok: 1 });
    expect(seen[0]!.request).toEqual({ name: 't' });
    expect(seen[0]!.deadline as number).toBeGreaterThanOrEqual(before + 10_000);
  });

  it('rejects with the ServiceError the stub reports', async () => {
    const failure = Object.assign(new Error('gone'), { code: grpc.status.UNAVAILABLE, details: 'gone', metadata: new grpc.Metadata() });
    const stub: UnaryStub<object, object> = (_r, _m, _o, callback) => {
      callback(failure, undefined as never);
      return {} as grpc.ClientUnaryCall;
    };
    await expect(callUnary(stub, {}, 1000)).rejects.toBe(failure);
  });

  it('is how the client calls RPCs: no file of libs/client dispatches on a method-name string', () => {
    const dir = dirname(fileURLToPath(import.meta.url));
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) => {
        const text = readFileSync(join(dir, f), 'utf8');
        // makeUnaryRequest only with a generated method definition's path and codecs, whose
        // serializer is swapped (produce-codec.ts), never with a path typed by hand.
        const unsafeMake =
          /makeUnaryRequest\((?!m\.path, )/.test(text) || (/makeUnaryRequest/.test(text) && !/const m = BrokerServiceService\.\w+;/.test(text));
        return /Record<string, Function>|\)\[method\]/.test(text) || unsafeMake;
      });
    expect(offenders).toEqual([]);
  });
});
