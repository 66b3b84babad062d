// End-to-end latency bookkeeping shared by the Skein and NATS loads. Every record's value starts
// with its *intended* send time (CLOCK_MONOTONIC ns, which all processes on one Linux machine share)
// from the fixed-rate schedule, so a producer that falls behind its schedule shows up as latency
// (coordinated-omission correction); byte 8 marks warm-up records, which the consumer skips.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';

// LAT_TRACE=FILE: also write every measured record's (intended send time ns, latency µs), to see
// whether the tail comes in bursts (a stall somewhere) or is spread out.
const TRACE = process.env.LAT_TRACE;
const trace = [];
const eld = TRACE ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
eld?.enable();

export const HEADER_BYTES = 9;

export function newHistogram() {
  // Microseconds, 1 µs .. 1 h, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

export function stampValue(template, intendedNs, warmup) {
  const v = Buffer.from(template);
  v.writeBigUInt64LE(intendedNs, 0);
  v[8] = warmup ? 1 : 0;
  return v;
}

/** A fixed-rate schedule: record k is due at start + k / rate; the first `warmupCount` are warm-up. */
export function schedule(ratePerS, durationMs, warmupMs) {
  const total = Math.max(1, Math.round((ratePerS * durationMs) / 1000));
  const warmupCount = Math.round((ratePerS * warmupMs) / 1000);
  const start = process.hrtime.bigint() + 20_000_000n;
  const intervalNs = 1e9 / ratePerS;
  return {
    total,
    warmupCount,
    intended: (k) => start + BigInt(Math.round(k * intervalNs)),
    /** How many records are due by now (never more than `total`). */
    dueNow() {
      const elapsed = Number(process.hrtime.bigint() - start);
      return elapsed < 0 ? 0 : Math.min(total, Math.floor(elapsed / intervalNs) + 1);
    },
    msSince(k) {
      return Number(process.hrtime.bigint() - (start + BigInt(Math.round(k * intervalNs)))) / 1e6;
    },
    msUntil(k) {
      return Math.max(0, Number(start + BigInt(Math.round(k * intervalNs)) - process.hrtime.bigint()) / 1e6);
    },
  };
}

/** Records one received value; returns false for warm-up records and values without a stamp. */
export function recordReceipt(h, value, nowNs) {
  if (value.length < HEADER_BYTES || value[8] !== 0) return false;
  const sent = value.readBigUInt64LE(0);
  const us = Math.max(1, Number(nowNs - sent) / 1000);
  h.recordValue(us);
  if (TRACE) trace.push(`${sent} ${Math.round(us)}`);
  return true;
}

/** With LAT_TRACE: prints this process's event-loop delay since the last call (a stalled load process delays records too). */
export function traceLoop(label) {
  if (!eld) return;
  console.error(`[latency trace] ${label} event-loop delay p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms, max ${(eld.max / 1e6).toFixed(1)} ms`);
  eld.reset();
}

export function summarize(h) {
  if (TRACE && trace.length > 0) {
    writeFileSync(`${TRACE}.${process.pid}.${Date.now()}`, trace.splice(0).join('\n'));
    traceLoop('consumer');
  }
  return {
    count: h.totalCount,
    p50Ms: h.getValueAtPercentile(50) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    p999Ms: h.getValueAtPercentile(99.9) / 1000,
    maxMs: h.maxValue / 1000,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}
