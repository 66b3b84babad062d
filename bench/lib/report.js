// Turns a run's measurements into the target verdicts, the markdown report and the latency chart.
// Pure functions of the report object that bench/run.js also writes as JSON.

const MIB = 2 ** 20;
const fmtInt = (n) => (n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const fmt = (n, d = 1) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
const ms = (n) => (n === undefined ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(1));

const find = (rows, system, pred) => rows.find((r) => r.system === system && pred(r));
const peerSystem = (system) => ({ 'Skein RF1': 'NATS R1', 'Skein RF3': 'NATS R3' })[system];

/** The throughput a row is bounded by on this machine: disk and gRPC for writes, gRPC for reads. */
function limitFor(row, raw) {
  // The large-window stream: Skein's brokers and clients run with large HTTP/2 windows (the
  // grpc-js patch), so Node's 64 KiB default is no longer what bounds them.
  const stream = raw.grpcWindow ?? raw.grpc;
  if (!stream) return undefined;
  if (row.kind === 'produce' || row.kind === 'produce-official' || row.kind === 'client-produce') return Math.min(stream.MBps, raw.disk?.MBps ?? Infinity);
  if (row.kind === 'consume' || row.kind === 'client-consume') return stream.MBps;
  return undefined;
}

function peerOf(row, rows) {
  const peer = peerSystem(row.system);
  if (!peer) return undefined;
  if (row.kind === 'latency') return find(rows, peer, (r) => r.kind === 'latency' && r.targetMBps === row.targetMBps);
  return find(rows, peer, (r) => r.kind === row.kind && r.size === row.size && r.producers === row.producers);
}

/** Skein ÷ peer: MB/s for throughput rows, p99 for latency rows (where below 1 is better). */
function peerRatio(row, rows) {
  const p = peerOf(row, rows);
  if (!p) return undefined;
  return row.kind === 'latency' ? row.p99Ms / p.p99Ms : row.MBps / p.MBps;
}

export function evaluateTargets(report) {
  const { rows, raw } = report;
  const rf1 = find(rows, 'Skein RF1', (r) => r.kind === 'produce' && r.size === 'kib' && r.producers === 1 && r.acks === '1');
  const rf1_100 = find(rows, 'Skein RF1', (r) => r.kind === 'produce' && r.size === 'b100' && r.producers === 1);
  const rf3all = find(rows, 'Skein RF3', (r) => r.kind === 'produce' && r.size === 'kib' && r.producers === 1 && r.acks === 'all');
  const rf1consume = find(rows, 'Skein RF1', (r) => r.kind === 'consume' && r.size === 'kib');
  const natsConsume = find(rows, 'NATS R1', (r) => r.kind === 'consume' && r.size === 'kib');
  const lat = find(rows, 'Skein RF3', (r) => r.kind === 'latency' && r.targetMBps === 5);
  const bigWindow = raw.grpcWindow?.MBps;
  const lat1 = find(rows, 'Skein RF1', (r) => r.kind === 'latency' && r.targetMBps === 5);
  const natsLat1 = find(rows, 'NATS R1', (r) => r.kind === 'latency' && r.targetMBps === 5);
  const natsLat3 = find(rows, 'NATS R3', (r) => r.kind === 'latency' && r.targetMBps === 5);
  const clientProduce = find(rows, 'Skein RF1', (r) => r.kind === 'client-produce');
  const clientConsume = find(rows, 'Skein RF1', (r) => r.kind === 'client-consume');
  const idle0 = find(rows, 'Skein RF3', (r) => r.kind === 'scaling-latency' && r.key === 'scaling-latency:0');
  const idle2000 = find(rows, 'Skein RF3', (r) => r.kind === 'scaling-latency' && r.key === 'scaling-latency:2000');
  const t = (id, target, measured, pass) => ({ id, target, measured, pass: pass === undefined ? 'not measured' : pass ? 'PASS' : 'FAIL' });
  const have = (...xs) => xs.every((x) => x !== undefined);
  return [
    // Issue 15: against the large-window gRPC stream limit (the old "5 × NATS" target is retired:
    // NATS's asynchronous publish already runs near the default-window limit).
    t('T1a', '1 KiB produce, RF1 acks=1 ≥ 0.5 × large-window gRPC stream limit',
      have(rf1, bigWindow) ? `${fmt(rf1.MBps)} MB/s vs 0.5 × ${fmt(bigWindow)} = ${fmt(bigWindow / 2)} MB/s (${fmt(rf1.MBps / bigWindow, 2)} × limit)` : '–',
      have(rf1, bigWindow) ? rf1.MBps >= 0.5 * bigWindow : undefined),
    t('T1b', 'e2e latency at 5 MB/s, RF1: p99 below NATS R1 p99',
      have(lat1, natsLat1) ? `p99 ${ms(lat1.p99Ms)} ms vs NATS R1 ${ms(natsLat1.p99Ms)} ms` : '–',
      have(lat1, natsLat1) ? !lat1.fellBehind && lat1.p99Ms < natsLat1.p99Ms : undefined),
    t('T2', '100 B produce, one producer ≥ 500,000 records/s',
      rf1_100 ? `${fmtInt(rf1_100.recordsPerS)} records/s` : '–', rf1_100 ? rf1_100.recordsPerS >= 500_000 : undefined),
    t('T3', '1 KiB produce, RF3 acks=all ≥ 0.40 × RF1 acks=1',
      have(rf1, rf3all) ? `${fmt(rf3all.MBps)} vs 0.40 × ${fmt(rf1.MBps)} = ${fmt(0.4 * rf1.MBps)} MB/s (${fmt(rf3all.MBps / rf1.MBps, 2)} ×)` : '–',
      have(rf1, rf3all) ? rf3all.MBps >= 0.4 * rf1.MBps : undefined),
    t('T4a', 'catch-up read (1 KiB, RF1) ≥ RF1 produce',
      have(rf1, rf1consume) ? `${fmt(rf1consume.MBps)} vs ${fmt(rf1.MBps)} MB/s` : '–', have(rf1, rf1consume) ? rf1consume.MBps >= rf1.MBps : undefined),
    t('T4b', 'catch-up read (1 KiB, RF1) > NATS R1 consume',
      have(natsConsume, rf1consume) ? `${fmt(rf1consume.MBps)} vs ${fmt(natsConsume.MBps)} MB/s` : '–', have(natsConsume, rf1consume) ? rf1consume.MBps > natsConsume.MBps : undefined),
    t('T5', 'e2e latency at 5 MB/s (1 KiB, RF3 acks=all) p99 < 10 ms and below NATS R3 p99',
      lat ? `p99 ${ms(lat.p99Ms)} ms (p50 ${ms(lat.p50Ms)}, p99.9 ${ms(lat.p999Ms)})${natsLat3 ? `; NATS R3 p99 ${ms(natsLat3.p99Ms)} ms` : ''}` : '–',
      lat ? !lat.fellBehind && lat.p99Ms < 10 && (!natsLat3 || lat.p99Ms < natsLat3.p99Ms) : undefined),
    t('T7', 'e2e p99 at 5 MB/s with 2,000 idle RF3 partitions ≤ 1.5 × without',
      have(idle0, idle2000) ? `p99 ${ms(idle2000.p99Ms)} ms vs ${ms(idle0.p99Ms)} ms (${fmt(idle2000.p99Ms / idle0.p99Ms, 2)} ×)` : '–',
      have(idle0, idle2000) ? idle2000.p99Ms <= 1.5 * idle0.p99Ms : undefined),
    t('T8', 'through the client library: produce ≥ 0.8 × and consume ≥ 0.8 × the raw-broker rows (1 KiB, RF1)',
      have(clientProduce, clientConsume, rf1, rf1consume)
        ? `produce ${fmt(clientProduce.MBps)} vs ${fmt(rf1.MBps)} MB/s (${fmt(clientProduce.MBps / rf1.MBps, 2)} ×); consume ${fmt(clientConsume.MBps)} vs ${fmt(rf1consume.MBps)} MB/s (${fmt(clientConsume.MBps / rf1consume.MBps, 2)} ×)`
        : '–',
      have(clientProduce, clientConsume, rf1, rf1consume) ? clientProduce.MBps >= 0.8 * rf1.MBps && !clientConsume.timedOut && clientConsume.MBps >= 0.8 * rf1consume.MBps : undefined),
    t('T6', 'broker RSS with 1,000 partitions < 300 MB',
      report.partitions ? `${fmt(report.partitions.rssBytes / 1e6, 0)} MB (peak ${fmt(report.partitions.hwmBytes / 1e6, 0)} MB)` : '–',
      report.partitions ? report.partitions.rssBytes < 300e6 : undefined),
  ];
}

function notes(report) {
  const s = report.settings;
  return [
    `- **What is measured.** Skein loads speak the broker's gRPC API directly (ProduceStream, Subscribe) with record batches built before the clock starts, as bench/broker.js does: the point is the broker. Skein's client library (encoding, partitioning, retries) is not in these figures, except the rows marked "client library": those send through \`client.producer().send()\` (1,000 new record objects per send, 4 sends in flight, as \`skein perf produce\`) and read with the client's Fetcher, decoding every record (as \`skein perf consume\`), against the same broker (target T8). NATS loads use its official Node client, \`nats\` ${report.machine.natsClient}.`,
    `- **Clients** open their broker channels with a 16 MiB HTTP/2 receive window, as the Skein client library does (BENCH_CLIENT_WINDOW overrides it), and run in separate worker processes (${s.severalProducers} for "${s.severalProducers} producers"), on the same 2 cores as the servers: client CPU competes with server CPU, for both systems alike.`,
    `- **Skein produce**: ProduceStream, batches of ${s.kib.recordsPerBatch} × 1 KiB or ${s.b100.recordsPerBatch.toLocaleString('en-US')} × 100 B records (about 1 MB, uncompressed, no keys), at most ${s.skeinInflight} requests unanswered. acks=1: leader appended; acks=all: every ISR member has it (RF3 topics have min.insync.replicas=2; the leader waits for all 3). No fsync per write (Kafka's default: durability by replication and the page cache).`,
    `- **NATS produce**: JetStream file storage, one stream per producer, one message per record (JetStream 2.9 has no batch publish). Asynchronous publish: a core publish with a reply inbox, PubAck checked for every message, at most ${s.natsInflight.toLocaleString('en-US')} unacknowledged (the best of 1k/8k/32k tried on this machine). This is what the Go client's PublishAsync does; nats.js's own js.publish() (a promise and timer per message) is reported on its own row. R1 PubAck: stored on the one server; R3: stored on a quorum (2 of 3). NATS syncs to disk every 2 min by default, so it also acks from the page cache.`,
    `- **Several producers**: ${s.severalProducers} producer processes; Skein: one topic with ${s.severalProducers} partitions, one per producer; NATS: ${s.severalProducers} streams, one per producer (a stream is JetStream's unit of order and storage, like a partition).`,
    `- **Catch-up read**: one consumer reads the backlog from the start (Skein: Subscribe, 4 MiB per message, records counted from batch headers without decoding them; NATS: ordered consumer, ${s.natsConsumeMaxMessages} messages per pull), stopping after ${s.consumeMaxMs / 1000} s if not done.`,
    `- **End-to-end latency**: one producer at a fixed rate (${s.latencyMs / 1000} s measured after ${s.warmupMs / 1000} s warm-up), one consumer reading as it is written, after the servers rested ${(s.latencyRestMs ?? 0) / 1000} s since the previous workload (every system alike; right after a throughput row Skein RF3's p99 measured about twice its rested figure). Every record carries its *intended* send time from the fixed schedule (CLOCK_MONOTONIC, shared by all processes), and latency is consumer receipt minus intended time, so a producer held back by a slow server is charged for it (coordinated-omission correction). Skein's producer sends what is due as one batch at most every ${s.skeinLingerMs} ms (linger.ms, the Skein client's default; at most ${s.skeinLatencyInflight} requests unanswered, acks=all); NATS's publishes each message as it falls due (timer resolution ~1 ms; at most ${s.natsInflight.toLocaleString('en-US')} unacknowledged), since JetStream has no batch to wait for. Percentiles from hdr-histogram-js (3 significant digits).`,
    `- **Isolation**: before each workload the servers are idle and \`sync\` has flushed the page cache, so no workload pays for the previous one's replication or writeback.`,
    `- **Server cost**: peak RSS is the largest VmRSS of any one server process (Skein brokers; nats-servers), sampled every 100 ms; CPU s/GB is utime+stime of all server processes from the workload's start until they are idle again (so replication that trails an acks=1 workload is counted), per GB moved (10^9 bytes of record payload). Skein's metadata service and etcd are off the data path and not counted.`,
    `- **vs peer**: Skein ÷ NATS at the same replication (RF1 ↔ R1, RF3 ↔ R3): MB/s for throughput rows (higher is better), p99 for latency rows (lower is better). **vs limit**: MB/s ÷ min(large-window gRPC stream, disk) for produce, ÷ large-window gRPC stream for reads.`,
    `- MB = 10^6 bytes; MiB = 2^20 bytes. Figures on a 2-core VM vary by ±20 % between runs.`,
  ].join('\n');
}

export function renderMarkdown(report) {
  const { rows, raw } = report;
  const out = [];
  out.push(`# Skein benchmark: side by side with NATS JetStream and the machine's limits`, '');
  out.push(`Generated ${report.generatedAt} by \`npm run bench${report.mode === 'quick' ? ' -- --quick' : ''}\` in ${fmt(report.durationSeconds, 0)} s. Machine: ${report.machine.cpus}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}, ${report.machine.natsServer}, nats.js ${report.machine.natsClient}, ${report.machine.etcd}. Processes outside this benchmark used ${fmt(report.machine.otherCpuCores, 2)} of the ${report.machine.cpus.split(' ')[0]} cores on average during the run${report.machine.otherCpuCores > 0.2 ? ' (a shared machine: figures are lower and noisier than on an idle one)' : ''}.`, '');
  if (raw.tcp || raw.grpc || raw.disk) {
    out.push('## Raw limits (same run)', '', '| what | MB/s |', '|---|---:|');
    if (raw.tcp) out.push(`| loopback TCP, Node → Node process, 1 MiB writes | ${fmt(raw.tcp.MBps, 0)} |`);
    if (raw.grpc) out.push(`| grpc-js bidi stream, 1 MiB messages, Node → Node process, Node's default 64 KiB HTTP/2 window | ${fmt(raw.grpc.MBps, 0)} |`);
    if (raw.grpcWindow) out.push(`| the same with 8 MiB HTTP/2 receive windows, as Skein's brokers and clients use (the limit used below) | ${fmt(raw.grpcWindow.MBps, 0)} |`);
    if (raw.disk) out.push(`| sequential 1 MiB writes + fdatasync | ${fmt(raw.disk.MBps, 0)} |`);
    out.push('');
  }
  out.push('## Results', '');
  out.push('| system | workload | records/s | MB/s | e2e p50 / p99 / p99.9 ms | peak RSS MiB | server CPU s/GB | vs peer | vs limit |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const lim = limitFor(r, raw);
    const pr = r.system.startsWith('Skein') ? peerRatio(r, rows) : undefined;
    const ge = r.fellBehind ? '≥ ' : '';
    const lat = r.kind === 'latency' ? `${ge}${ms(r.p50Ms)} / ${ge}${ms(r.p99Ms)} / ${ge}${ms(r.p999Ms)}` : '–';
    const behind = r.fellBehind ? ` (fell behind: ${fmt((100 * r.fellBehind.received) / r.fellBehind.expected, 0)} % of the records arrived within ${fmt(r.fellBehind.capMs / 1000, 0)} s)` : '';
    const prText = pr === undefined ? '–' : r.kind === 'latency' ? `p99 ${fmt(pr, 2)} ×` : `${fmt(pr, 2)} ×`;
    out.push(`| ${r.system} | ${r.label}${r.timedOut ? ' (stopped at the time cap)' : ''}${behind} | ${fmtInt(r.recordsPerS)} | ${fmt(r.MBps)} | ${lat} | ${fmt(r.peakRssBytes / MIB, 0)} | ${fmt(r.cpuSecondsPerGB)} | ${prText} | ${lim ? fmt(r.MBps / lim, 2) : '–'} |`);
  }
  out.push('');
  if (report.partitions) {
    const p = report.partitions;
    out.push(`**1,000 partitions** (Skein, 1 broker, ${p.topics} topics × ${p.partitions / p.topics} partitions, 10 × 100 B records written to each): broker RSS ${fmt(p.rssBytes / 1e6, 0)} MB (${fmt(p.rssBytes / MIB, 0)} MiB; ${fmt(p.idleRssBytes / 1e6, 0)} MB before the topics existed; peak ${fmt(p.hwmBytes / 1e6, 0)} MB). Topics created in ${fmt(p.createSeconds)} s.`, '');
  }
  out.push('## Targets', '', '| | target | measured | result |', '|---|---|---|---|');
  for (const t of report.targets) out.push(`| ${t.id} | ${t.target} | ${t.measured} | ${t.pass} |`);
  out.push('', 'Targets are goals for this benchmark, not test assertions. Why the failing ones fail, and what would lift them: bench/PROFILE.md.', '');
  if (report.errors.length > 0) {
    out.push('## Errors', '');
    for (const e of report.errors) out.push(`- ${e.what}: ${e.error.split('\n')[0]}`);
    out.push('');
  }
  out.push('## How it was measured', '', notes(report), '');
  out.push('Latency percentiles against throughput: [latency.svg](latency.svg).', '');
  if (report.scaling && report.scaling.producers.length + report.scaling.idlePartitions.length > 0) {
    out.push('RF 3 acks=all throughput against producers, and e2e p99 against idle partitions: [scaling.svg](scaling.svg).', '');
  }
  return out.join('\n');
}

/** Latency percentiles (log scale) against the fixed rate, one colour per system. */
export function renderSvg(report) {
  const series = new Map();
  for (const r of report.rows.filter((x) => x.kind === 'latency')) {
    if (!series.has(r.system)) series.set(r.system, []);
    series.get(r.system).push(r);
  }
  const W = 820;
  const H = 480;
  const m = { l: 70, r: 220, t: 50, b: 60 };
  const pts = [...series.values()].flat();
  const maxX = Math.max(10, ...pts.map((p) => p.MBps)) * 1.1;
  const ys = pts.flatMap((p) => [p.p50Ms, p.p99Ms, p.p999Ms]).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...ys, 10))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(20, ...ys))));
  const x = (v) => m.l + (v / maxX) * (W - m.l - m.r);
  const y = (v) => H - m.b - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - m.t - m.b);
  const colours = { 'Skein RF3': '#1f5fbf', 'Skein RF1': '#7fa8e8', 'NATS R3': '#d9711c', 'NATS R1': '#f2b27a' };
  const dashes = { p50Ms: '2,3', p99Ms: '', p999Ms: '7,4' };
  const names = { p50Ms: 'p50', p99Ms: 'p99', p999Ms: 'p99.9' };
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${m.l}" y="24" font-size="15" font-weight="bold">End-to-end latency at fixed rates, 1 KiB records</text>`);
  o.push(`<text x="${m.l}" y="40" fill="#555">from each record's intended send time (coordinated omission corrected); ${esc(report.mode)} run ${esc(report.generatedAt.slice(0, 16))}Z</text>`);
  for (let d = lo; d <= hi; d *= 10) {
    o.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/><text x="${m.l - 8}" y="${y(d) + 4}" text-anchor="end">${d >= 1 ? d : d.toPrecision(1)} ms</text>`);
  }
  const step = [1, 2, 5, 10, 20, 50, 100].find((st) => maxX / st <= 8) ?? 200;
  for (let v = 0; v <= maxX; v += step) {
    o.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${x(v)}" y="${H - m.b + 18}" text-anchor="middle">${v}</text>`);
  }
  o.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 18}" text-anchor="middle">throughput, MB/s (fixed rate); p50 dotted, p99 solid, p99.9 dashed; log scale</text>`);
  o.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#888"/>`);
  // The p99 target (< 10 ms at 5 MB/s), so a glance tells pass from fail.
  o.push(`<line x1="${x(4)}" x2="${x(6)}" y1="${y(10)}" y2="${y(10)}" stroke="#c00" stroke-width="2"/><text x="${x(6) + 4}" y="${y(10) + 4}" fill="#c00">target p99 &lt; 10 ms at 5 MB/s</text>`);
  let ly = m.t + 10;
  for (const [system, rs] of series) {
    const c = colours[system] ?? '#444';
    rs.sort((a, b) => a.MBps - b.MBps);
    for (const k of ['p50Ms', 'p99Ms', 'p999Ms']) {
      const path = rs.map((r, i) => `${i ? 'L' : 'M'}${x(r.MBps).toFixed(1)},${y(r[k]).toFixed(1)}`).join(' ');
      if (rs.length > 1) o.push(`<path d="${path}" fill="none" stroke="${c}" stroke-width="2" stroke-dasharray="${dashes[k]}"/>`);
      // Hollow points: the system fell behind the rate, so the value is a lower bound.
      for (const r of rs) o.push(`<circle cx="${x(r.MBps).toFixed(1)}" cy="${y(r[k]).toFixed(1)}" r="3.5" fill="${r.fellBehind ? 'white' : c}" stroke="${c}" stroke-width="1.5"><title>${esc(system)} ${names[k]} at ${r.MBps} MB/s: ${r.fellBehind ? '≥ ' : ''}${ms(r[k])} ms</title></circle>`);
    }
    o.push(`<line x1="${W - m.r + 15}" x2="${W - m.r + 45}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="3"/><text x="${W - m.r + 52}" y="${ly + 4}">${esc(system)}</text>`);
    ly += 20;
  }
  ly += 10;
  for (const k of ['p50Ms', 'p99Ms', 'p999Ms']) {
    o.push(`<line x1="${W - m.r + 15}" x2="${W - m.r + 45}" y1="${ly}" y2="${ly}" stroke="#444" stroke-width="2" stroke-dasharray="${dashes[k]}"/><text x="${W - m.r + 52}" y="${ly + 4}">${names[k]}</text>`);
    ly += 20;
  }
  if (pts.some((p) => p.fellBehind)) o.push(`<circle cx="${W - m.r + 30}" cy="${ly}" r="3.5" fill="white" stroke="#444" stroke-width="1.5"/><text x="${W - m.r + 52}" y="${ly + 4}">fell behind (lower bound)</text>`);
  o.push('</svg>');
  return o.join('\n') + '\n';
}
