// Each library's public surface is what its package.json exports: @skein/client and @skein/streams (for users) one
// entry, the internal libraries an explicit list, none a "./*" pattern that makes every file public.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const exportsOf = (lib: string): Record<string, string> => JSON.parse(readFileSync(join(root, 'libs', lib, 'package.json'), 'utf8')).exports;
/** What Node itself says when `specifier` is imported from the repository root. */
const importFromRoot = (specifier: string): string =>
  execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `import(${JSON.stringify(specifier)}).then((m) => console.log('ok', Object.keys(m).length), (e) => console.log(e.code))`],
    {
      cwd: root,
      encoding: 'utf8',
    },
  ).trim();

describe('library exports', () => {
  it('@skein/client has one entry, with what users need', async () => {
    expect(Object.keys(exportsOf('client'))).toEqual(['.']);
    const client = await import('@skein/client');
    for (const name of ['SkeinClient', 'GroupConsumer', 'GroupAdmin', 'Producer', 'partitionForKey', 'SkeinError', 'Acks', 'CompressionCodec', 'OffsetSpec']) {
      expect(client, name).toHaveProperty(name);
    }
    expect(importFromRoot('@skein/client/murmur2.js')).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    expect(importFromRoot('@skein/client/dist/client.js')).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('@skein/streams has one entry, with the DSL, the runtime and the test driver', async () => {
    expect(Object.keys(exportsOf('streams'))).toEqual(['.']);
    const streams = await import('@skein/streams');
    for (const name of [
      'StreamsBuilder',
      'SkeinStreams',
      'Serdes',
      'TimeWindows',
      'SessionWindows',
      'SlidingWindows',
      'JoinWindows',
      'TopologyTestDriver',
      'windowedSerde',
    ]) {
      expect(streams, name).toHaveProperty(name);
    }
    expect(importFromRoot('@skein/streams/dist/runtime.js')).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('no library exports a wildcard; the internal ones list their modules; the CLI exports none', () => {
    for (const lib of ['client', 'common', 'proto', 'cli', 'streams'])
      expect(
        Object.keys(exportsOf(lib)).filter((k) => k.includes('*')),
        lib,
      ).toEqual([]);
    expect(exportsOf('common')).toHaveProperty(['./errors.js']);
    expect(exportsOf('proto')).toHaveProperty(['./skein/broker/v1/broker.js']);
    expect(exportsOf('cli')).toEqual({});
    expect(importFromRoot('@skein/common/errors.js')).toMatch(/^ok \d+$/);
    expect(importFromRoot('@skein/common/reflection.js')).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
