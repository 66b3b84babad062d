/**
 * Starts Skein services as child processes on free loopback ports with their own temporary data
 * directories, waits until grpc.health.v1 answers SERVING, and stops them by pid. Output goes to a
 * log file per process; `logs()` returns its tail for failure messages.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { freePort } from './ports.js';
import { stopChild, track } from './processes.js';
import { waitFor } from './wait.js';

export { waitFor } from './wait.js';

export interface ServiceOptions {
  name: string;
  /** Absolute path of a built dist/main.js. */
  entry: string;
  args?: string[];
  env?: Record<string, string>;
  /** Reuse a port (restarts keep the address). */
  port?: number;
  dataDir?: string;
  /** Pass the data dir as this flag (e.g. --data-dir). */
  dataDirFlag?: string;
  startTimeoutMs?: number;
  /** How the start-up health check connects (default plaintext); TLS for a service started with --tls-*. */
  credentials?: grpc.ChannelCredentials;
}

export interface ServiceProcess {
  name: string;
  readonly pid: number;
  port: number;
  address: string;
  dataDir: string;
  logFile: string;
  stop(graceMs?: number): Promise<void>;
  kill(): void;
  /** Resolves when the current process exits, however it ends (a failpoint's SIGKILL, a crash). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops and starts it again on the same port and data dir; `env` entries replace the first start's. */
  restart(options?: { env?: Record<string, string> }): Promise<void>;
  logs(lines?: number): string;
}

const started: ServiceProcess[] = [];

export async function healthCheck(address: string, service = '', timeoutMs = 1000, credentials = grpc.credentials.createInsecure()): Promise<string> {
  const client = new grpc.Client(address, credentials);
  try {
    return await new Promise((resolve, reject) => {
      // grpc.health.v1.HealthCheckRequest { string service = 1; } encoded by hand: tag 0x0a, length, bytes.
      const req = Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]);
      client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) return reject(err);
        // HealthCheckResponse { ServingStatus status = 1; } → 0x08 <enum>
        const status = res && res.length >= 2 ? res[1] : 0;
        resolve(['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'][status ?? 0] ?? 'UNKNOWN');
      });
    });
  } finally {
    client.close();
  }
}

export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `skein-${options.name}-`));
  const logFile = join(dataDir, `${options.name}.log`);
  let child: ChildProcess;
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let env = { ...options.env };

  const launch = async () => {
    const args = [options.entry, '--port', String(port), ...(options.dataDirFlag ? [options.dataDirFlag, dataDir] : []), ...(options.args ?? [])];
    child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    const current = child;
    exit = new Promise((resolve) => current.once('exit', (code, signal) => resolve({ code, signal })));
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`${options.name} exited during start-up (${signal ?? code}); log:\n${tail(logFile, 30)}`))));
    exited.catch(() => {});
    await Promise.race([
      waitFor(async () => (await healthCheck(`127.0.0.1:${port}`, '', 1000, options.credentials)) === 'SERVING', { timeoutMs: options.startTimeoutMs ?? 30_000, intervalMs: 100, message: `${options.name} answers SERVING` }),
      exited,
    ]).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n--- ${options.name} log ---\n${tail(logFile, 30)}`);
    });
  };
  await launch();

  const proc: ServiceProcess = {
    name: options.name,
    get pid() { return child.pid!; },
    port,
    address: `127.0.0.1:${port}`,
    dataDir,
    logFile,
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
    kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); },
    exited: () => exit,
    async restart(restartOptions) {
      await stopChild(child, 10_000);
      if (restartOptions?.env) env = { ...env, ...restartOptions.env };
      await launch();
    },
    logs: (lines = 50) => tail(logFile, lines),
  };
  started.push(proc);
  return proc;
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Stops every service this test file started and removes their data dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all(started.splice(0).map(async (p) => {
    await p.stop(5000);
    rmSync(p.dataDir, { recursive: true, force: true });
  }));
}
