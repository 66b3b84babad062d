import { CompressionCodec, ProduceRequest } from '@skein/proto/skein/broker/v1/broker.js';
import { describe, expect, it } from 'vitest';
import { encodeProduceRequest } from './produce-codec.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';

describe('encodeProduceRequest', () => {
  it('writes the bytes the generated encoder writes, on 500 random requests', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const int = (max: number) => Math.floor(r() * max);
      const pick = <T>(xs: readonly T[]) => xs[int(xs.length)]!;
      const req: ProduceRequest = {
        acks: pick([0, 1, 2, 3]),
        timeoutMs: pick([0, 1, 30_000, -1, 2 ** 31 - 1]),
        topics: Array.from({ length: int(3) + (seed === 1 ? 0 : 1) }, () => ({
          topic: pick(['', 't', 'orders', 'ünï-✓', 'x'.repeat(300)]),
          partitions: Array.from({ length: int(3) + 1 }, () => ({
            partition: pick([0, 1, 7, 200, 2 ** 31 - 1]),
            batch:
              r() < 0.1
                ? undefined
                : {
                    formatVersion: pick([0, 1]),
                    compression: pick([CompressionCodec.COMPRESSION_CODEC_NONE, CompressionCodec.COMPRESSION_CODEC_LZ4]),
                    recordCount: int(2000),
                    producerId: pick([-1n, 0n, 12345678901n]),
                    producerEpoch: pick([-1, 0, 5]),
                    baseSequence: pick([-1, 0, 2 ** 31 - 1]),
                    firstTimestampMs: pick([0n, 1_700_000_000_000n, -5n]),
                    maxTimestampMs: pick([0n, 1_700_000_000_123n]),
                    crc32c: int(2 ** 32),
                    records: Buffer.from(Array.from({ length: pick([0, 1, 127, 128, 20_000, 300_000]) }, () => int(256))),
                    ...(r() < 0.3 ? { isTransactional: r() < 0.5 } : {}),
                  },
          })),
        })),
      };
      const mine = encodeProduceRequest(req);
      const theirs = Buffer.from(ProduceRequest.encode(req).finish());
      expect(mine.equals(theirs), `seed ${seed}`).toBe(true);
    }
  });
});
