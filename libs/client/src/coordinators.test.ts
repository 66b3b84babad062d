import { describe, expect, it } from 'vitest';
import { CoordinatorPool } from './coordinators.js';

// Channels are created lazily by grpc-js: nothing here connects anywhere.
describe('CoordinatorPool', () => {
  it('with fixed addresses: never discovers, rotates on failure', async () => {
    const pool = new CoordinatorPool(['a:1', 'b:2']);
    const first = await pool.current();
    pool.failed();
    expect(await pool.current()).not.toBe(first);
    pool.failed();
    expect(await pool.current()).toBe(first);
    expect(pool.triesPerCall).toBe(2);
    pool.close();
  });

  it('discovering: asks once, asks again only after every known instance failed, keeps the channels of instances still listed', async () => {
    const answers = [['a:1', 'b:2'], ['b:2', 'c:3']];
    let asked = 0;
    const pool = new CoordinatorPool(async () => answers[Math.min(asked++, answers.length - 1)]!);
    const a = await pool.current();
    await pool.current();
    expect(asked).toBe(1);
    expect(pool.addresses).toEqual(['a:1', 'b:2']);
    pool.failed();
    const b = await pool.current();
    expect(asked).toBe(1);
    pool.failed();
    await pool.current();
    expect(asked).toBe(2);
    expect(pool.addresses).toEqual(['b:2', 'c:3']);
    // a:1 is gone from the list; b:2 survived it and keeps its channel.
    const now = [await pool.current()];
    pool.failed();
    now.push(await pool.current());
    expect(now).not.toContain(a);
    expect(now).toContain(b);
    pool.close();
  });

  it('discovering: concurrent callers share one lookup; no instance is COORDINATOR_NOT_AVAILABLE', async () => {
    let asked = 0;
    const pool = new CoordinatorPool(async () => { asked++; return ['a:1']; });
    await Promise.all([pool.current(), pool.current(), pool.current()]);
    expect(asked).toBe(1);
    pool.close();
    const empty = new CoordinatorPool(async () => []);
    await expect(empty.current()).rejects.toMatchObject({ reason: 'COORDINATOR_NOT_AVAILABLE' });
  });
});
