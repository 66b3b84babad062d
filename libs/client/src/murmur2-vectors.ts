/**
 * Values of Kafka's Java Utils.murmur2 for the UTF-8 bytes of each key, computed with Kafka's own
 * implementation: the reference our partitioner is checked against (unit and cluster tests). A
 * key's Kafka partition is (hash & 0x7fffffff) % partitionCount.
 */
export const KAFKA_MURMUR2_VECTORS: Readonly<Record<string, number>> = {
  '0': 971027396,
  '1': -1993445489,
  '128': -326012175,
  '2187': -1508407203,
  '16384': -325739742,
  '78125': -1654490814,
  '279936': 1462227128,
  '823543': -2014198330,
};
