#!/usr/bin/env node
// What an unconfigured failpoint costs (issue 13), not run by the tests:
//   npx tsc -b libs/common && node bench/failpoints.js [--calls 200000000]
// Times a loop calling failpoint() with SKEIN_FAILPOINTS unset against the same loop calling an
// empty function, interleaved over 5 rounds; prints ns per call of each (best round).
import { parseArgs } from 'node:util';
import { failpoint } from '@skein/common/failpoints.js';

if (process.env.SKEIN_FAILPOINTS) throw new Error('unset SKEIN_FAILPOINTS: this measures the disabled path');
const { values } = parseArgs({ options: { calls: { type: 'string', default: '200000000' } } });
const calls = Number(values.calls);
let sink = 0;
function empty(name) { if (name.length === 0) sink++; }
const names = ['replica.afterAppend', 'broker.produce.afterAppend', 'log.beforeRoll', 'log.afterRoll'];

function run(fn) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) { fn(names[i & 3]); sink += i & 1; }
  return Number(process.hrtime.bigint() - start) / calls;
}

const best = { failpoint: Infinity, empty: Infinity, loop: Infinity };
for (let round = 0; round < 5; round++) {
  best.failpoint = Math.min(best.failpoint, run(failpoint));
  best.empty = Math.min(best.empty, run(empty));
}
console.log(`${calls} calls, best of 5: failpoint() unset ${best.failpoint.toFixed(2)} ns/call; empty function ${best.empty.toFixed(2)} ns/call (sink ${sink & 1})`);
