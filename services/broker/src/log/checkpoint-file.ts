/**
 * Small files written atomically: write a temp file, fsync it, rename over the target, fsync the
 * directory. A crash leaves either the old or the new content, never a mix.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname } from 'node:path';
import { failpoint } from '@skein/common/failpoints.js';

export function writeFileAtomic(path: string, data: Buffer | string, sync = true): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (sync) fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // Crash tests: the new content is complete in the temp file, the target still has the old.
  failpoint('log.checkpointFile.beforeRename');
  fs.renameSync(tmp, path);
  if (sync) {
    const dfd = fs.openSync(dirname(path), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }
}

/**
 * writeFileAtomic with its I/O (the fdatasync and the directory fsync above all) on libuv's
 * threadpool, for writes nothing waits for (the background checkpoint pass): a synchronous fsync
 * stalls every request of the process for as long as the journal commit takes (2-50 ms measured
 * on the benchmark machine, three files per partition per pass). `stillWanted` is asked just
 * before the rename, on the event loop: false discards the write (a newer write of the same file
 * happened meanwhile, and older content must not replace it). Its own temp name, so it never
 * shares one with a synchronous write. Resolves whether the file was replaced.
 */
export async function writeFileAtomicInBackground(path: string, data: Buffer, stillWanted: () => boolean): Promise<boolean> {
  const tmp = `${path}.bg.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  if (!stillWanted()) {
    await fsp.rm(tmp, { force: true });
    return false;
  }
  failpoint('log.checkpointFile.beforeRename');
  fs.renameSync(tmp, path);
  const dir = await fsp.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return true;
}

export function readFileIfExists(path: string): Buffer | undefined {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
