// The etcd the manifests deploy stays healthy under commit load and fits what the group coordinator
// sends it: auto-compaction and a quota are set (without them etcd keeps every revision and, at the
// default 2 GiB quota, stops all writes), and the coordinator's commit transactions (--max-txn-ops,
// --max-txn-bytes defaults) stay within etcd's --max-txn-ops and --max-request-bytes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { coordinatorConfigSchema } from '../services/group-coordinator/src/config.js';

const ROOT = new URL('../', import.meta.url).pathname;

function etcdArgs(): Map<string, string> {
  const docs = parseAllDocuments(readFileSync(`${ROOT}deploy/k8s/base/etcd.yaml`, 'utf8')).map((d) => d.toJSON());
  const sts = docs.find((d) => d?.kind === 'StatefulSet' && d.metadata.name === 'etcd');
  const args: string[] = sts.spec.template.spec.containers.find((c: { name: string }) => c.name === 'etcd').args;
  return new Map(args.map((a) => a.replace(/^--/, '').split('=') as [string, string]));
}

describe('etcd manifest', () => {
  it('compacts history and sets a quota', () => {
    const args = etcdArgs();
    expect(args.get('auto-compaction-mode')).toBe('periodic');
    expect(args.get('auto-compaction-retention')).toMatch(/^\d+[smh]$/);
    const quota = Number(args.get('quota-backend-bytes'));
    expect(quota).toBeGreaterThanOrEqual(2 * 1024 ** 3);
    expect(quota).toBeLessThanOrEqual(8 * 1024 ** 3); // etcd's advice
  });

  it('accepts the transactions the group coordinator sends by default', () => {
    const args = etcdArgs();
    expect(coordinatorConfigSchema.maxTxnOps.default).toBeLessThanOrEqual(Number(args.get('max-txn-ops')));
    // Keys, values and compares within maxTxnBytes; protobuf framing and the header need the rest.
    expect(coordinatorConfigSchema.maxTxnBytes.default + 256 * 1024).toBeLessThanOrEqual(Number(args.get('max-request-bytes')));
  });
});
