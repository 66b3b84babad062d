/**
 * Small files written atomically: write a temp file, fsync it, rename over the target, fsync the
 * directory. A crash leaves either the old or the new content, never a mix.
 */
import * as fs from 'node:fs';
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

export function readFileIfExists(path: string): Buffer | undefined {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
