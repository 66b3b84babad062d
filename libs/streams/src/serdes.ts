/**
 * Serdes: how keys and values become bytes on topics and in state stores, and back. A serde's
 * `serialize(null)` is null (a tombstone value, or a record without a key) and
 * `deserialize(null)` is null, so tombstones pass through every serde unchanged.
 */
export interface Serde<T> {
  serialize(value: T | null): Buffer | null;
  deserialize(bytes: Buffer | null): T | null;
  /**
   * Asynchronous set-up before processing (a registry serde resolves the schema id it writes);
   * the runtime awaits it for source and sink serdes in start(). See registry-serde.ts.
   */
  prepare?(): Promise<void>;
  /** A promise when deserialize(bytes) needs something fetched first (a writer's schema); the runtime awaits it before processing a batch. */
  prefetch?(bytes: Buffer | null): Promise<void> | undefined;
}

const stringSerde: Serde<string> = {
  serialize: (v) => (v === null || v === undefined ? null : Buffer.from(v, 'utf8')),
  deserialize: (b) => (b === null ? null : b.toString('utf8')),
};

const bytesSerde: Serde<Buffer> = {
  serialize: (v) => (v === null || v === undefined ? null : v),
  deserialize: (b) => b,
};

function jsonSerde<T>(): Serde<T> {
  return {
    serialize: (v) => (v === null || v === undefined ? null : Buffer.from(JSON.stringify(v), 'utf8')),
    deserialize: (b) => (b === null ? null : (JSON.parse(b.toString('utf8')) as T)),
  };
}

/** A 64-bit big-endian integer (Kafka's LongSerde): what counts are written as by default. */
const longSerde: Serde<number> = {
  serialize: (v) => {
    if (v === null || v === undefined) return null;
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    return b;
  },
  deserialize: (b) => (b === null ? null : Number(b.readBigInt64BE(0))),
};

export const Serdes = {
  String: (): Serde<string> => stringSerde,
  Bytes: (): Serde<Buffer> => bytesSerde,
  JSON: <T = unknown>(): Serde<T> => jsonSerde<T>(),
  Long: (): Serde<number> => longSerde,
};

/** A window: [start, end) for time windows, [start, end] for session windows (ms since the epoch). */
export interface Window {
  start: number;
  end: number;
}

/** The key of a windowed aggregate's result. */
export interface Windowed<K> {
  key: K;
  window: Window;
}

/**
 * Windowed keys on a topic: the inner key's bytes, then the window start and end as 8-byte
 * big-endian integers (Kafka's time-windowed serde writes the start only; the end is here so that
 * session windows, whose length varies, read back whole). A null key stays null.
 */
export function windowedSerde<K>(inner: Serde<K>): Serde<Windowed<K>> {
  return {
    serialize: (w) => {
      if (w === null || w === undefined) return null;
      const k = inner.serialize(w.key) ?? Buffer.alloc(0);
      const b = Buffer.alloc(k.length + 16);
      k.copy(b, 0);
      b.writeBigInt64BE(BigInt(w.window.start), k.length);
      b.writeBigInt64BE(BigInt(w.window.end), k.length + 8);
      return b;
    },
    deserialize: (b) => {
      if (b === null) return null;
      if (b.length < 16) throw new RangeError(`a windowed key needs at least 16 bytes, got ${b.length}`);
      const n = b.length - 16;
      return {
        key: inner.deserialize(b.subarray(0, n)) as K,
        window: { start: Number(b.readBigInt64BE(n)), end: Number(b.readBigInt64BE(n + 8)) },
      };
    },
  };
}

/** A table row's change (Kafka's Change<V>): what KTable.groupBy sends through its repartition topic. */
export interface Change<V> {
  oldValue: V | null;
  newValue: V | null;
}

/**
 * Changes on a repartition topic: a flags byte (bit 0: old value present, bit 1: new value
 * present), the old value's length as a 4-byte big-endian integer and its bytes, then the new
 * value's bytes. Malformed bytes throw a RangeError naming what is wrong.
 */
export function changeSerde<V>(inner: Serde<V>): Serde<Change<V>> {
  return {
    serialize: (c) => {
      if (c === null || c === undefined) return null;
      const o = c.oldValue === null ? null : inner.serialize(c.oldValue);
      const n = c.newValue === null ? null : inner.serialize(c.newValue);
      const head = Buffer.alloc(5);
      head[0] = (o === null ? 0 : 1) | (n === null ? 0 : 2);
      head.writeUInt32BE(o?.length ?? 0, 1);
      return Buffer.concat([head, o ?? Buffer.alloc(0), n ?? Buffer.alloc(0)]);
    },
    deserialize: (b) => {
      if (b === null) return null;
      if (b.length < 5) throw new RangeError(`a change needs at least 5 bytes, got ${b.length}`);
      const flags = b[0]!;
      if (flags > 3) throw new RangeError(`a change's flags byte must be 0-3, got ${flags}`);
      const oldLength = b.readUInt32BE(1);
      if (5 + oldLength > b.length) throw new RangeError(`a change's old value claims ${oldLength} bytes, ${b.length - 5} follow`);
      return {
        oldValue: flags & 1 ? inner.deserialize(b.subarray(5, 5 + oldLength)) : null,
        newValue: flags & 2 ? inner.deserialize(b.subarray(5 + oldLength)) : null,
      };
    },
  };
}
