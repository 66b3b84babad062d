#!/usr/bin/env node
// Generates TypeScript from proto/ with buf + ts-proto into libs/proto/src/gen (committed, so a fresh
// clone builds with `npm ci` alone). With --check, generates into a temporary directory and fails if
// the committed code differs from what the protos produce.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const committed = join(root, 'libs/proto/src/gen');
const check = process.argv.includes('--check');
const buf = join(root, 'node_modules/.bin/buf');

function generate(outDir) {
  const template = JSON.stringify({
    version: 'v2',
    plugins: [{
      local: join(root, 'node_modules/.bin/protoc-gen-ts_proto'),
      out: outDir,
      opt: readFileSync(join(root, 'buf.gen.yaml'), 'utf8')
        .split('\n').filter((l) => /^\s+- \w+=/.test(l)).map((l) => l.trim().slice(2)),
    }],
  });
  execFileSync(buf, ['generate', '--template', template], { cwd: root, stdio: 'inherit' });
}

function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

if (!check) {
  rmSync(committed, { recursive: true, force: true });
  generate(committed);
  console.log(`generated ${listFiles(committed).length} files into ${relative(root, committed)}`);
} else {
  const tmp = mkdtempSync(join(tmpdir(), 'skein-proto-check-'));
  try {
    generate(tmp);
    const want = new Map(listFiles(tmp).map((f) => [relative(tmp, f), readFileSync(f, 'utf8')]));
    const have = new Map(listFiles(committed).map((f) => [relative(committed, f), readFileSync(f, 'utf8')]));
    const problems = [];
    for (const [name, text] of want) {
      if (!have.has(name)) problems.push(`missing: ${name}`);
      else if (have.get(name) !== text) problems.push(`differs: ${name}`);
    }
    for (const name of have.keys()) if (!want.has(name)) problems.push(`stale: ${name}`);
    if (problems.length > 0) {
      console.error('Generated code in libs/proto/src/gen does not match proto/. Run `npm run proto:gen`.');
      for (const p of problems) console.error(`  ${p}`);
      process.exit(1);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
