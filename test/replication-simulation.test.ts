/**
 * Runs the seeded replication simulation (replication-simulation.ts) over many seeds. Bounded in
 * `npm test`; SKEIN_SIM_SEEDS=20000 (and SKEIN_SIM_FIRST_SEED) for the long mode. A failure names
 * the seed; SKEIN_SIM_SEED=<n> replays exactly that run.
 */
import { describe, expect, it } from 'vitest';
import { runSimulation } from './replication-simulation.js';

const first = Number(process.env['SKEIN_SIM_FIRST_SEED'] ?? 1);
const count = Number(process.env['SKEIN_SIM_SEEDS'] ?? 400);
const only = process.env['SKEIN_SIM_SEED'];
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => first + i);

describe('replication simulation', () => {
  it(`keeps every invariant over ${seeds.length} seeded runs (crashes, empty disks, pauses, cuts, loss)`, () => {
    let acked = 0;
    let elections = 0;
    let failedAcks = 0;
    for (const seed of seeds) {
      const r = runSimulation({ seed, diskLoss: true });
      if (r.violation) throw new Error(`seed ${seed} (replay: SKEIN_SIM_SEED=${seed}): ${r.violation}`);
      acked += r.acked;
      elections += r.elections;
      failedAcks += r.failedAcks;
    }
    console.log(`replication simulation: ${seeds.length} runs, ${acked} acks, ${elections} elections, ${failedAcks} writes refused after append`);
    // The runs must have exercised something: acknowledgements, leader changes and refused acks.
    expect(acked).toBeGreaterThan(seeds.length * 10);
    expect(elections).toBeGreaterThan(seeds.length);
    expect(failedAcks).toBeGreaterThan(0);
  }, 60_000 + seeds.length * 40);

  it('finds the acks=all-below-min-ISR violation with the old rule (negative control)', () => {
    const found = Array.from({ length: 50 }, (_, i) => runSimulation({ seed: 1000 + i, rules: 'old' })).filter((r) => r.violation);
    expect(found.length).toBeGreaterThan(0);
    expect(found.some((r) => /acknowledged by broker \d while only 1 replica/.test(r.violation!))).toBe(true);
  }, 60_000);

  it('replays a run exactly from its seed', () => {
    expect(runSimulation({ seed: 42, diskLoss: true })).toEqual(runSimulation({ seed: 42, diskLoss: true }));
  });
});
