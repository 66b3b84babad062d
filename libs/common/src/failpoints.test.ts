import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { configureFailpoints, failpoint, FailpointError, parseFailpoints } from './failpoints.js';

afterEach(() => configureFailpoints(''));

describe('parseFailpoints', () => {
  it('reads name=action entries, ignoring blanks and spaces; a later entry for a name wins', () => {
    const points = parseFailpoints(' replica.afterAppend=exit, log.beforeRoll = sleep(250),,broker.produce.afterAppend=throw,replica.afterAppend=off ');
    expect([...points]).toEqual([
      ['replica.afterAppend', { kind: 'off' }],
      ['log.beforeRoll', { kind: 'sleep', ms: 250 }],
      ['broker.produce.afterAppend', { kind: 'throw' }],
    ]);
    expect(parseFailpoints('').size).toBe(0);
  });

  it.each([
    ['replica.afterAppend', /not name=action/],
    ['replica=exit', /not a failpoint name/],
    ['=exit', /not a failpoint name/],
    ['replica.afterAppend=crash', /must be exit, throw, sleep\(ms\) or off/],
    ['replica.afterAppend=sleep(-1)', /must be exit/],
    ['replica.afterAppend=sleep(1e3)', /must be exit/],
    ['replica.afterAppend=sleep', /must be exit/],
  ])('refuses %s, naming the entry', (spec, message) => {
    expect(() => parseFailpoints(spec)).toThrow(message);
  });
});

describe('failpoint', () => {
  it('does nothing for names that are not configured or are off', () => {
    configureFailpoints('a.b=throw,c.d=off');
    expect(() => failpoint('c.d')).not.toThrow();
    expect(() => failpoint('x.y')).not.toThrow();
  });

  it('throws a FailpointError naming the point', () => {
    configureFailpoints('replica.afterAppend=throw');
    let caught: unknown;
    try {
      failpoint('replica.afterAppend');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FailpointError);
    expect((caught as FailpointError).code).toBe('FAILPOINT');
    expect((caught as FailpointError).failpoint).toBe('replica.afterAppend');
    configureFailpoints('');
    expect(() => failpoint('replica.afterAppend')).not.toThrow();
  });

  it('exit kills the process with SIGKILL at the point, from SKEIN_FAILPOINTS, before anything after it runs', () => {
    // The child runs the built module (npm test builds first): Node 20 cannot import .ts itself.
    const dist = fileURLToPath(new URL('../dist/failpoints.js', import.meta.url));
    const script = `const { failpoint } = await import(${JSON.stringify(dist)});
      process.on('exit', () => process.stdout.write('exit handler ran\\n'));
      process.stdout.write('before\\n');
      failpoint('test.point');
      process.stdout.write('after\\n');`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, SKEIN_FAILPOINTS: 'test.point=exit' }, encoding: 'utf8', timeout: 20_000 });
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).toBe('before\n');
    expect(child.stderr).toContain('failpoint test.point: exit');
  });

  it('a malformed SKEIN_FAILPOINTS stops the process at load with a message naming the entry', () => {
    const dist = fileURLToPath(new URL('../dist/failpoints.js', import.meta.url));
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(dist)});`], { env: { ...process.env, SKEIN_FAILPOINTS: 'replica.afterAppend=explode' }, encoding: 'utf8', timeout: 20_000 });
    expect(child.status).not.toBe(0);
    expect(child.stderr).toContain('replica.afterAppend=explode');
  });
});
