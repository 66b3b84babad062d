#!/usr/bin/env node
// Self time per function and per package from V8 CPU profiles (node --cpu-prof output), cut into
// the workload windows that bench/run.js --profile records in DIR/windows.json:
//   node bench/profile-summary.js DIR_OR_FILE...
import { parseArgs } from 'node:util';
import { summarizeProfiles } from './lib/cpuprofile.js';

const { positionals } = parseArgs({ allowPositionals: true });
if (positionals.length === 0) {
  console.error('usage: node bench/profile-summary.js DIR_OR_FILE...');
  process.exit(2);
}
console.log(summarizeProfiles(...positionals));
