/**
 * The data directory's identity (cf. Kafka KIP-858's directory id in meta.properties).
 *
 * File `<dataDir>/directory.json`: `{"v":1,"directoryId":"<uuid>","createdAtMs":<ms>}`, written
 * once, when the directory is first used, atomically (temp file, fsync, rename, fsync of the
 * directory), so a crash leaves either no file or a whole one. The broker sends the id when it
 * registers; a missing file means an empty or replaced disk, so the broker gets a new id and the
 * controller fences its replicas out of every ISR before it may register (it then rejoins ISRs
 * only by catching up). An unreadable file stops start-up: guessing would either hide a replaced
 * disk or fence a good one.
 *
 * Synchronous on purpose: it runs once at start-up, before anything else touches the directory.
 */

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';

export const DIRECTORY_ID_FILE = 'directory.json';

export interface DataDirIdentity {
  directoryId: string;
  /** True when this call created the id: the directory was new, empty or replaced. */
  created: boolean;
}

/** Reads the data directory's id, creating the directory and the id on first use. */
export function ensureDirectoryId(dataDir: string, options: { newId?: () => string; nowMs?: () => number } = {}): DataDirIdentity {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DIRECTORY_ID_FILE);
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return { directoryId: parseDirectoryFile(text, file), created: false };

  const directoryId = (options.newId ?? randomUUID)();
  const tmp = `${file}.tmp`;
  const body = JSON.stringify({ v: 1, directoryId, createdAtMs: (options.nowMs ?? Date.now)() }) + '\n';
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(dataDir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
  return { directoryId, created: true };
}

function parseDirectoryFile(text: string, file: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON; restore it or, if the disk's data is lost, remove the data directory's contents`);
  }
  const p = parsed as { v?: unknown; directoryId?: unknown };
  if (p.v !== 1) throw new Error(`${file} has unsupported version ${String(p.v)}`);
  if (typeof p.directoryId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(p.directoryId)) {
    throw new Error(`${file} holds no valid directoryId`);
  }
  return p.directoryId;
}
