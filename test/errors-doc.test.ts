// docs/errors.md is generated from the reason table (scripts/errors-doc.js); `npm test` runs the
// drift check. Here: every reason is documented with its code and retriability, a reason without
// guidance stops the generator, and the committed reference is what the table produces.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REASON_GUIDANCE, REASONS } from '../libs/common/src/errors.js';
// @ts-expect-error: a plain JavaScript script without type declarations
import { renderErrorsDoc } from '../scripts/errors-doc.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('the error reference', () => {
  it('has one row per reason with its gRPC code, retriability and guidance', () => {
    const doc: string = renderErrorsDoc(REASONS, REASON_GUIDANCE);
    for (const reason of Object.keys(REASONS)) expect(doc).toContain(`| \`${reason}\` |`);
    expect(doc).toContain('| `NOT_LEADER_OR_FOLLOWER` | FAILED_PRECONDITION | yes | Kafka');
    expect(doc).toContain('| `UNKNOWN_TOPIC` | NOT_FOUND | no |');
    expect(doc).toContain('| `UNKNOWN_TOPIC_OR_PARTITION` | NOT_FOUND | yes |');
  });

  it('refuses a reason without guidance', () => {
    expect(() => renderErrorsDoc({ ...REASONS, NEW_REASON: [5, false] }, REASON_GUIDANCE)).toThrow(/no text for NEW_REASON/);
  });

  it('keeps one name per meaning: the synonyms are gone', () => {
    expect(Object.keys(REASONS)).not.toContain('NOT_LEADER_FOR_PARTITION');
    expect(Object.keys(REASONS)).not.toContain('UNKNOWN_CODEC');
  });

  it('is committed as generated (docs/errors.md)', () => {
    expect(readFileSync(join(root, 'docs/errors.md'), 'utf8')).toBe(renderErrorsDoc(REASONS, REASON_GUIDANCE));
  });
});
