// The project targets Node 20: every installed package, dev tools included, must declare that it
// runs on the oldest Node the root package.json admits. (kubernetes-models 5.1 and its
// @kubernetes-models/* dependencies declared Node >= 22 and were installed anyway: npm only warns.)
// Packages for other platforms that npm skipped (optional native binaries) are not checked.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe('dependency engines', () => {
  const oldest = semver.minVersion(manifest.engines.node)!;

  it('the project admits Node 20', () => {
    expect(oldest.major).toBe(20);
    expect(semver.satisfies(process.version, manifest.engines.node), `running ${process.version}`).toBe(true);
  });

  it(`every installed package runs on Node ${oldest.version}`, () => {
    const refusing: string[] = [];
    let checked = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (path === '' || range === undefined || !existsSync(join(root, path))) continue;
      checked++;
      if (!semver.satisfies(oldest, range)) refusing.push(`${path}@${entry.version}: node ${range}`);
    }
    expect(checked).toBeGreaterThan(10);
    expect(refusing).toEqual([]);
  });
});
