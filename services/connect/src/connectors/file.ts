/**
 * File source and sink (Kafka's FileStreamSource/FileStreamSink, made exact).
 *
 * Source (`FileSource`): reads `file` from the byte position stored in its offset and emits each
 * complete line (without its '\n') as one record to `topic`, value a Buffer (use
 * value.converter=bytes for an exact copy, string for UTF-8 text). The offset of a record is the
 * byte position after its line, so a restarted task continues at the first line not committed. A
 * line without its '\n' yet waits (the file may be growing: `tail -f` semantics); the file is
 * watched by polling its size.
 *
 * Sink (`FileSink`): appends each record's value and '\n' to `file`. Exactly once into the file:
 * `flush` writes and fsyncs the data, then records the file's length and the next offset of every
 * partition in a sidecar (`<file>.skein-offsets`, replaced atomically by rename), and `open`
 * truncates the file back to the sidecar's length and resumes every partition at the sidecar's
 * offsets. Whatever a killed worker wrote after its last flush is cut off and written again, so the
 * copy has every line once, in order per partition.
 */

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import type { ConnectorPlugin, SinkRecord, SinkTask, SourceRecord, SourceTask, SourceTaskContext, TopicPartitionOffset } from '../sdk/types.js';

const READ_CHUNK_BYTES = 1 << 20;

class FileSourceTask implements SourceTask {
  private fd: number | undefined;
  private path = '';
  private topic = '';
  private position = 0;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  private maxLines = 10_000;

  async start(config: Readonly<Record<string, string>>, context: SourceTaskContext): Promise<void> {
    this.path = config.file!;
    this.topic = config.topic!;
    this.maxLines = Number(config['batch.size'] ?? '10000');
    const stored = context.offset({ filename: this.path });
    this.position = typeof stored?.position === 'number' ? stored.position : 0;
    context.logger.info({ file: this.path, position: this.position }, 'file source starts');
  }

  private open(): boolean {
    if (this.fd !== undefined) return true;
    if (!existsSync(this.path)) return false;
    this.fd = openSync(this.path, 'r');
    return true;
  }

  async poll(signal: AbortSignal): Promise<SourceRecord[]> {
    const records: SourceRecord[] = [];
    if (this.open()) {
      while (records.length < this.maxLines) {
        const n = readSync(this.fd!, this.buffer, 0, READ_CHUNK_BYTES, this.position);
        if (n === 0) break;
        let start = 0;
        for (;;) {
          const nl = this.buffer.indexOf(10, start);
          if (nl < 0 || nl >= n) break;
          // Copied: the read buffer is reused by the next read.
          const line = Buffer.from(this.buffer.subarray(start, nl));
          start = nl + 1;
          records.push({
            topic: this.topic,
            key: null,
            value: line,
            headers: [],
            sourcePartition: { filename: this.path },
            sourceOffset: { position: this.position + start },
          });
          if (records.length >= this.maxLines) break;
        }
        if (start === 0) {
          // No complete line in a whole chunk: a line longer than the chunk is not supported.
          if (n === READ_CHUNK_BYTES) throw new Error(`${this.path}: a line at byte ${this.position} is longer than ${READ_CHUNK_BYTES} bytes`);
          break;
        }
        this.position += start;
        if (n < READ_CHUNK_BYTES) break;
      }
    }
    if (records.length === 0) await idle(250, signal);
    return records;
  }

  async stop(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function idle(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

interface Sidecar {
  size: number;
  offsets: Record<string, string>;
}

class FileSinkTask implements SinkTask {
  private path = '';
  private fd: number | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private size = 0;
  private readonly next = new Map<string, bigint>();
  private opened = false;

  private get sidecarPath(): string {
    return `${this.path}.skein-offsets`;
  }

  async start(config: Readonly<Record<string, string>>): Promise<void> {
    this.path = config.file!;
  }

  private readSidecar(): Sidecar {
    if (!existsSync(this.sidecarPath)) return { size: 0, offsets: {} };
    return JSON.parse(readFileSync(this.sidecarPath, 'utf8')) as Sidecar;
  }

  async open(partitions: Array<{ topic: string; partition: number }>): Promise<TopicPartitionOffset[]> {
    const sidecar = this.readSidecar();
    if (!this.opened) {
      // What was written after the last flush is not covered by the sidecar: cut it off.
      if (existsSync(this.path) && statSync(this.path).size > sidecar.size) truncateSync(this.path, sidecar.size);
      this.fd = openSync(this.path, 'a');
      this.size = sidecar.size;
      for (const [k, v] of Object.entries(sidecar.offsets)) this.next.set(k, BigInt(v));
      this.opened = true;
    }
    const out: TopicPartitionOffset[] = [];
    for (const p of partitions) {
      const o = this.next.get(`${p.topic}:${p.partition}`);
      if (o !== undefined) out.push({ ...p, offset: o });
    }
    return out;
  }

  async put(records: SinkRecord[]): Promise<void> {
    for (const r of records) {
      const v = r.value;
      const bytes =
        v === null || v === undefined ? Buffer.alloc(0) : Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8');
      this.pending.push(bytes, NEWLINE);
      this.pendingBytes += bytes.length + 1;
      this.next.set(`${r.topic}:${r.partition}`, r.offset + 1n);
    }
    // Written at once (one write per batch), made durable by flush: what a crash leaves after the
    // last flush is cut off by open(), never counted.
    this.write();
  }

  private write(): void {
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    let off = 0;
    while (off < data.length) off += writeSync(this.fd!, data, off);
    this.size += data.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  async flush(): Promise<void> {
    if (this.fd === undefined) return;
    this.write();
    fsyncSync(this.fd);
    const sidecar: Sidecar = { size: this.size, offsets: Object.fromEntries([...this.next].map(([k, v]) => [k, v.toString()])) };
    const tmp = `${this.sidecarPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(sidecar));
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.sidecarPath);
  }

  async stop(): Promise<void> {
    await this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const NEWLINE = Buffer.from('\n');

export const fileSource: ConnectorPlugin = {
  connectorClass: 'FileSource',
  type: 'source',
  version: '1.0.0',
  description: 'Lines of a file into a topic; resumes at the first line not committed',
  config: [
    { name: 'file', type: 'string', doc: 'Path of the file to read' },
    { name: 'topic', type: 'string', doc: 'Topic to write lines to' },
    { name: 'batch.size', type: 'int', default: '10000', min: 1, max: 1_000_000, doc: 'Most lines per poll' },
  ],
  taskConfigs: (config) => [{ ...config }],
  createTask: () => new FileSourceTask(),
};

export const fileSink: ConnectorPlugin = {
  connectorClass: 'FileSink',
  type: 'sink',
  version: '1.0.0',
  description: 'Records of topics appended to a file as lines, exactly once (position kept beside the file)',
  config: [{ name: 'file', type: 'string', doc: 'Path of the file to append to' }],
  // One writer per file: more tasks would interleave unsynchronised appends.
  taskConfigs: (config) => [{ ...config }],
  createTask: () => new FileSinkTask(),
};
