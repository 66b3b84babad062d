/**
 * Reading a service's /metrics in tests: the URL from its log ('metrics on /metrics', logged by the
 * service shell when --metrics-port is set; port 0 picks a free one, so the latest line after a
 * restart wins), and the Prometheus text format parsed into samples.
 */
import { readFileSync } from 'node:fs';
import type { ServiceProcess } from './services.js';
import { waitFor } from './wait.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The /metrics URL the process logged last (waits for the line). */
export async function metricsUrl(proc: ServiceProcess, timeoutMs = 10_000): Promise<string> {
  let url = '';
  await waitFor(() => {
    const lines = readFileSync(proc.logFile, 'utf8').split('\n').filter((l) => l.includes('"metrics on /metrics"'));
    const last = lines.at(-1);
    if (last) url = (JSON.parse(last) as { url: string }).url;
    return url !== '';
  }, { timeoutMs, message: `${proc.name} logs its /metrics URL` });
  return url;
}

/** Parses the Prometheus text exposition format (no escaped quotes in our label values). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parseMetrics(await res.text());
}

/** The sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}
