// The import-boundary check (scripts/check-boundaries.js) that `npm test` runs through `npm run lint`:
// fake files that cross each boundary are refused, the allowed shapes pass, and the CLI fails on a
// fake repository with one violation.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript script without type declarations
import { checkRepository, checkSource } from '../scripts/check-boundaries.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const services = new Map([
  ['@skein/broker', 'broker'],
  ['@skein/metadata', 'metadata'],
]);
const check = (file: string, source: string): string[] => checkSource(file, source, services);

describe('import boundaries', () => {
  it('refuses a service importing another service, by relative path or by package name', () => {
    expect(check('services/broker/src/server.ts', "import { x } from '../../metadata/src/domain/image.js';")).toEqual([
      expect.stringContaining('service broker imports service metadata'),
    ]);
    expect(check('services/broker/src/server.ts', "import type { y } from '@skein/metadata/dist/main.js';")).toHaveLength(1);
    expect(check('services/broker/src/server.ts', "const m = await import('@skein/metadata');")).toHaveLength(1);
    // Its own modules and the libraries are fine.
    expect(check('services/broker/src/server.ts', "import { a } from './log/partition-log.js';\nimport { b } from '@skein/common/errors.js';")).toEqual([]);
  });

  it('refuses a library importing a service', () => {
    expect(check('libs/common/src/x.ts', "export { thing } from '../../../services/broker/src/config.js';")).toEqual([
      expect.stringMatching(/^libs\/common\/src\/x\.ts:1: library common imports service broker/),
    ]);
    expect(check('libs/client/src/x.ts', "import '@skein/broker';")).toHaveLength(1);
  });

  it('refuses I/O in domain modules and in the pure parts of the log, naming the line', () => {
    const io =
      "import type { Metadata } from 'x';\nimport * as fs from 'node:fs';\nimport { Etcd3 } from 'etcd3';\nimport * as grpc from '@grpc/grpc-js';\nimport pino from 'pino';\nimport { connect } from 'net';";
    expect(check('services/metadata/src/domain/placement.ts', io)).toEqual([
      expect.stringMatching(/placement\.ts:2: domain module imports 'node:fs'/),
      expect.stringMatching(/placement\.ts:3: .*'etcd3'/),
      expect.stringMatching(/placement\.ts:4: .*'@grpc\/grpc-js'/),
      expect.stringMatching(/placement\.ts:5: .*'pino'/),
      expect.stringMatching(/placement\.ts:6: .*'net'/),
    ]);
    expect(check('services/broker/src/log/offset-index.ts', "import { readFileSync } from 'node:fs';")).toHaveLength(1);
    expect(check('services/broker/src/replication/replication-core.ts', "import { x } from 'node:fs/promises';")).toHaveLength(1);
    // A test beside a domain module is held to the same rule.
    expect(check('services/group-coordinator/src/domain/group.test.ts', "import { mkdtempSync } from 'node:fs';")).toHaveLength(1);
    // A domain module may not reach I/O through a neighbour either.
    expect(check('services/broker/src/log/producer-state.ts', "import { LogSegment } from './log-segment.js';")).toEqual([
      expect.stringContaining("'./log-segment.js', which is not a domain module"),
    ]);
  });

  it('allows the I/O layer, the shells, the listed exception and test/ importing services', () => {
    expect(check('services/broker/src/log/log-segment.ts', "import * as fs from 'node:fs';")).toEqual([]);
    expect(check('services/broker/src/replication/replica-fetcher.ts', "import * as grpc from '@grpc/grpc-js';")).toEqual([]);
    expect(check('services/broker/src/log/log-error.ts', "import { status } from '@grpc/grpc-js';")).toEqual([]);
    // A domain module's test may use a test fixture (the I/O rule still holds for the test itself).
    expect(check('services/broker/src/log/entry-format.test.ts', "import { legacyEntry } from '../../test/fixtures/legacy-entry.js';")).toEqual([]);
    expect(check('test/replication-simulation.ts', "import { a } from '../services/broker/src/replication/replication-core.js';")).toEqual([]);
    expect(
      check('services/metadata/src/domain/image.ts', "import { a } from './records.js';\nimport { M } from '@skein/proto/skein/metadata/v1/metadata.js';"),
    ).toEqual([]);
  });

  it('passes on this repository', () => {
    expect(checkRepository(root)).toEqual([]);
  });

  describe('the command', () => {
    const fake = mkdtempSync(join(tmpdir(), 'skein-boundaries-'));
    afterAll(() => rmSync(fake, { recursive: true, force: true }));

    it('exits 1 and names the file on a fake repository with one violation, 0 once it is fixed', () => {
      mkdirSync(join(fake, 'services/metadata/src/domain'), { recursive: true });
      mkdirSync(join(fake, 'services/broker/src'), { recursive: true });
      writeFileSync(join(fake, 'services/metadata/package.json'), JSON.stringify({ name: '@skein/metadata' }));
      writeFileSync(join(fake, 'services/broker/package.json'), JSON.stringify({ name: '@skein/broker' }));
      writeFileSync(join(fake, 'services/metadata/src/domain/image.ts'), "import { Broker } from '@skein/broker/dist/server.js';\n");
      const run = () => execFileSync(process.execPath, [join(root, 'scripts/check-boundaries.js'), '--root', fake], { encoding: 'utf8', stdio: 'pipe' });
      let failure: { status?: number; stderr?: string } | undefined;
      try {
        run();
      } catch (err) {
        failure = err as { status?: number; stderr?: string };
      }
      expect(failure?.status).toBe(1);
      expect(failure?.stderr).toContain('services/metadata/src/domain/image.ts:1: service metadata imports service broker');
      writeFileSync(join(fake, 'services/metadata/src/domain/image.ts'), "import { a } from './records.js';\n");
      writeFileSync(join(fake, 'services/metadata/src/domain/records.ts'), 'export const a = 1;\n');
      expect(run()).toBe('');
    });
  });
});
