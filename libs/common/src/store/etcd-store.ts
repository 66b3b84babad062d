/**
 * MetadataStore on etcd through the `etcd3` client. Revisions arrive as decimal strings and are
 * turned into bigint; transactions use etcd's raw Txn so compares and ops map one to one; leases
 * are renewed by id over one shared LeaseKeepAlive stream, because a broker's session may be kept
 * alive by a different metadata instance than the one that granted it.
 */

import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import {
  type Compare,
  type KeyValue,
  type LeaseGrant,
  type MetadataStore,
  type RangeResult,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  StoreCompactedError,
  StoreUnavailableError,
} from './types.js';

const TARGET = { createRevision: 'Create', modRevision: 'Mod', version: 'Version', value: 'Value' } as const;
const RESULT = { '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

function toKv(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value,
    createRevision: BigInt(kv.create_revision),
    modRevision: BigInt(kv.mod_revision),
    version: BigInt(kv.version),
    lease: BigInt(kv.lease),
  };
}

/** The end of a prefix range: the prefix with its last byte incremented (etcd's convention). */
function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i] = b[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/**
 * etcd cancels a watch with an empty reason when its start revision is compacted (the compact
 * revision travels in a field etcd3 does not surface), and for nothing else we ask of it.
 */
function isCompaction(err: Error): boolean {
  return /compact/i.test(err.message) || /Watcher canceled:\s*$/.test(err.message);
}

function unavailable(err: unknown): never {
  if (err instanceof StoreCompactedError || err instanceof StoreUnavailableError) throw err;
  throw new StoreUnavailableError(`etcd request failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** How to reach etcd: endpoints, optional TLS (client certificate for etcd's --client-cert-auth) and user/password. */
export interface EtcdConnectOptions {
  endpoints: string[];
  dialTimeoutMs?: number;
  /** TLS to etcd (https endpoints): the CA that signed etcd's certificate (default: Node's public roots), and a client certificate. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** etcd's own authentication (etcdctl user add / auth enable). */
  auth?: { username: string; password: string };
}

export class EtcdStore implements MetadataStore {
  readonly kind = 'etcd' as const;
  private keepAliveStream: Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>> | undefined;
  private readonly keepAliveWaiters = new Map<string, Array<(ttl: number | undefined) => void>>();

  private constructor(private readonly client: Etcd3) {}

  static async connect(options: EtcdConnectOptions): Promise<EtcdStore> {
    const tls = options.tls;
    const scheme = tls ? 'https' : 'http';
    const hosts = options.endpoints.map((e) => (/^https?:\/\//.test(e) ? e.replace(/^https?/, scheme) : `${scheme}://${e}`));
    const etcdOptions: IOptions = { hosts, dialTimeout: options.dialTimeoutMs ?? 5000, faultHandling: { global: undefined as never } };
    if (tls) {
      // Read once: the etcd3 client builds its TLS credentials when it is created, so a rotated
      // etcd client certificate is picked up at the next start (docs/security.md).
      // Without a CA file, grpc-js verifies etcd against its default roots (rootCertificate absent).
      etcdOptions.credentials = {
        ...(tls.caFile ? { rootCertificate: readFileSync(tls.caFile) } : {}),
        ...(tls.certFile && tls.keyFile ? { certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile) } : {}),
      } as NonNullable<IOptions['credentials']>;
    }
    if (options.auth) etcdOptions.auth = { username: options.auth.username, password: options.auth.password };
    const client = new Etcd3(etcdOptions);
    const store = new EtcdStore(client);
    // Fail fast with a clear error when etcd is unreachable.
    await client.kv.range({ key: Buffer.from('/'), limit: '1' }).catch(unavailable);
    return store;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.client.kv.range({ key: Buffer.from(key) }).catch(unavailable);
    const kv = res.kvs[0];
    return kv ? toKv(kv) : undefined;
  }

  async range(prefix: string): Promise<RangeResult> {
    const res = await this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), sort_target: 'Key', sort_order: 'Ascend' } as never).catch(unavailable);
    return { kvs: res.kvs.map(toKv), revision: BigInt(res.header.revision) };
  }

  private op(op: TxnOp) {
    if (op.type === 'put') return { request_put: { key: Buffer.from(op.key), value: op.value, lease: op.lease !== undefined && op.lease !== 0n ? op.lease.toString() : '0' } };
    if (op.type === 'delete') return { request_delete_range: { key: Buffer.from(op.key) } };
    return { request_delete_range: { key: Buffer.from(op.prefix), range_end: prefixEnd(op.prefix) } };
  }

  private compare(c: Compare) {
    const base = { key: Buffer.from(c.key), target: TARGET[c.target], result: RESULT[c.op] };
    switch (c.target) {
      case 'createRevision': return { ...base, create_revision: c.value.toString() };
      case 'modRevision': return { ...base, mod_revision: c.value.toString() };
      case 'version': return { ...base, version: c.value.toString() };
      case 'value': return { ...base, value: c.value };
    }
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    const res = await this.client.kv.txn({
      compare: request.compare.map((c) => this.compare(c)),
      success: request.success.map((o) => this.op(o)),
      failure: (request.failure ?? []).map((o) => this.op(o)),
    } as never).catch(unavailable);
    return { succeeded: res.succeeded, revision: BigInt(res.header.revision) };
  }

  async grantLease(ttlMs: number): Promise<LeaseGrant> {
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const res = await this.client.leaseClient.leaseGrant({ TTL: String(seconds), ID: '0' } as never).catch(unavailable);
    return { leaseId: BigInt(res.ID), ttlMs: Number(res.TTL) * 1000 };
  }

  private async stream() {
    if (this.keepAliveStream) return this.keepAliveStream;
    const stream = await this.client.leaseClient.leaseKeepAlive().catch(unavailable);
    this.keepAliveStream = stream;
    const failAll = () => {
      if (this.keepAliveStream === stream) this.keepAliveStream = undefined;
      for (const waiters of this.keepAliveWaiters.values()) for (const w of waiters) w(Number.NaN);
      this.keepAliveWaiters.clear();
    };
    stream.on('data', (res: { ID: string; TTL: string }) => {
      const waiters = this.keepAliveWaiters.get(res.ID);
      const w = waiters?.shift();
      if (waiters && waiters.length === 0) this.keepAliveWaiters.delete(res.ID);
      const ttl = Number(res.TTL);
      w?.(ttl > 0 ? ttl * 1000 : undefined);
    });
    stream.on('error', failAll);
    stream.on('end', failAll);
    return stream;
  }

  async keepAliveOnce(leaseId: bigint): Promise<number | undefined> {
    const stream = await this.stream();
    const id = leaseId.toString();
    const result = await new Promise<number | undefined>((resolve) => {
      const list = this.keepAliveWaiters.get(id) ?? [];
      list.push(resolve);
      this.keepAliveWaiters.set(id, list);
      stream.write({ ID: id } as never);
      setTimeout(() => {
        const waiters = this.keepAliveWaiters.get(id);
        const i = waiters?.indexOf(resolve) ?? -1;
        if (i >= 0) { waiters!.splice(i, 1); resolve(Number.NaN); }
      }, 5000).unref();
    });
    if (Number.isNaN(result)) throw new StoreUnavailableError(`lease keep-alive for ${id} got no answer`);
    return result;
  }

  async revokeLease(leaseId: bigint): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: leaseId.toString() });
    } catch (err) {
      if (/not found/i.test((err as Error).message)) return;
      unavailable(err);
    }
  }

  async watchPrefix(prefix: string, options: WatchOptions): Promise<WatchHandle> {
    let builder = this.client.watch().prefix(prefix).withPreviousKV();
    if (options.fromRevision !== undefined) builder = builder.startRevision(options.fromRevision.toString());
    let closed = false;
    let chain: Promise<void> = Promise.resolve();
    let watcher: Watcher;
    try {
      watcher = await builder.create();
    } catch (err) {
      if (isCompaction(err as Error)) throw new StoreCompactedError(options.fromRevision ?? 0n, 0n);
      unavailable(err);
    }
    watcher.on('data', (res) => {
      // etcd may deliver several revisions in one response: split them so each batch is one revision.
      const byRevision = new Map<bigint, WatchEvent[]>();
      for (const e of res.events) {
        const rev = BigInt(e.kv.mod_revision);
        const list = byRevision.get(rev) ?? [];
        if (e.type === 'Put') list.push({ type: 'put', kv: toKv(e.kv), prevKv: e.prev_kv ? toKv(e.prev_kv) : undefined });
        else list.push({ type: 'delete', key: e.kv.key.toString('utf8'), modRevision: rev, prevKv: e.prev_kv ? toKv(e.prev_kv) : undefined });
        byRevision.set(rev, list);
      }
      for (const [revision, events] of [...byRevision.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
        chain = chain.then(async () => {
          if (!closed) await options.onBatch({ revision, events });
        }).catch(() => {});
      }
    });
    watcher.on('error', (err: Error) => {
      if (closed) return;
      closed = true;
      void watcher.cancel().catch(() => {});
      options.onError(isCompaction(err) ? new StoreCompactedError(options.fromRevision ?? 0n, 0n) : err);
    });
    return {
      close: async () => {
        closed = true;
        await watcher.cancel().catch(() => {});
        await chain;
      },
    };
  }

  async close(): Promise<void> {
    this.keepAliveStream?.end();
    this.client.close();
  }
}
