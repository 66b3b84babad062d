/**
 * Serdes: how keys and values become bytes on topics and in state stores, and back. A serde's
 * `serialize(null)` is null (a tombstone value, or a record without a key) and
 * `deserialize(null)` is null, so tombstones pass through every serde unchanged.
 */
export interface Serde<T> {
  serialize(value: T | null): Buffer | null;
  deserialize(bytes: Buffer | null): T | null;
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
