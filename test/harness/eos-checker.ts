/**
 * The exactly-once checker (Jepsen style): given every input record (read back from the input
 * topic, the ground truth: a produce whose answer was lost may still have landed) and every output
 * record a read_committed reader sees, it reports input records whose output is missing or appears
 * more than once, outputs with no input, and keys whose outputs are out of input order. Pure.
 *
 * Records are identified by their value, `key:seq`, seq increasing per key in input order.
 */
export interface EosRecord {
  key: string;
  /** `key:seq` as produced to the input topic (the pipeline writes it through unchanged). */
  value: string;
}

export interface EosReport {
  ok: boolean;
  inputs: number;
  outputs: number;
  missing: string[];
  duplicated: string[];
  unexpected: string[];
  /** Keys whose outputs do not follow input order, with the first offending pair. */
  reordered: Array<{ key: string; before: string; after: string }>;
}

const seqOf = (value: string) => Number(value.slice(value.lastIndexOf(':') + 1));

/** `outputs` per output partition in log order (order within a key is only defined inside one partition). */
export function checkExactlyOnce(inputs: readonly EosRecord[], outputsByPartition: ReadonlyArray<readonly EosRecord[]>): EosReport {
  const expected = new Set(inputs.map((r) => r.value));
  const seen = new Map<string, number>();
  const reordered: EosReport['reordered'] = [];
  let outputs = 0;
  for (const partition of outputsByPartition) {
    const lastSeq = new Map<string, string>();
    for (const r of partition) {
      outputs++;
      seen.set(r.value, (seen.get(r.value) ?? 0) + 1);
      const prev = lastSeq.get(r.key);
      if (prev !== undefined && seqOf(prev) >= seqOf(r.value) && !reordered.some((x) => x.key === r.key))
        reordered.push({ key: r.key, before: prev, after: r.value });
      lastSeq.set(r.key, r.value);
    }
  }
  const missing = [...expected].filter((v) => !seen.has(v));
  const duplicated = [...seen.entries()].filter(([, n]) => n > 1).map(([v]) => v);
  const unexpected = [...seen.keys()].filter((v) => !expected.has(v));
  return {
    ok: missing.length === 0 && duplicated.length === 0 && unexpected.length === 0 && reordered.length === 0,
    inputs: expected.size,
    outputs,
    missing,
    duplicated,
    unexpected,
    reordered,
  };
}
