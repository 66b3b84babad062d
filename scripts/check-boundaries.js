#!/usr/bin/env node
// Import-boundary check: keeps the layering that STYLE.md describes visible and enforced.
//
//   1. A service imports no other service: services talk through the proto/ contracts only.
//   2. A library (libs/*) imports no service.
//   3. A domain module imports no I/O (node:fs, node:net, @grpc/grpc-js, etcd3, pino, ...), and its
//      relative imports stay among domain modules, so no I/O comes in through a neighbour.
//      Domain modules: services/*/src/domain/**, services/broker/src/log/** except the log's I/O
//      layer (IO_SHELLS below), and services/broker/src/replication/replication-core.ts.
//
// Imports are read with a regular expression over `import ... from`, `export ... from`, `import '...'`,
// `import('...')` and `require('...')`: the code base is ESM TypeScript with static specifiers, so a
// parser would add a dependency and change nothing. Direct imports are checked, not the transitive
// closure (the shared error table in @skein/common imports @grpc/grpc-js for its status codes, and
// domain code raises those errors).
//
// Usage: node scripts/check-boundaries.js [--root DIR]. Exits 1 listing every violation.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Modules that do I/O; a domain module imports none of them. */
export const IO_MODULES = [
  'fs',
  'fs/promises',
  'net',
  'tls',
  'http',
  'http2',
  'https',
  'dgram',
  'child_process',
  'worker_threads',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  '@grpc/reflection',
  'grpc-health-check',
  'etcd3',
  'pino',
  'prom-client',
];

/** services/broker/src/log files that are the log's I/O layer (synchronous file I/O by design, see log-segment.ts). */
export const IO_SHELLS = new Set([
  'services/broker/src/log/aborted-index.ts',
  'services/broker/src/log/checkpoint-file.ts',
  'services/broker/src/log/data-dir.ts',
  'services/broker/src/log/log-cleaner.ts',
  'services/broker/src/log/log-segment.ts',
  'services/broker/src/log/partition-log.ts',
]);

/** Known, deliberate exceptions: [importing file, imported module, why]. Keep this list short. */
export const EXCEPTIONS = [
  [
    'services/broker/src/log/log-error.ts',
    '@grpc/grpc-js',
    'LogError reads grpc.status.DATA_LOSS (a constant) for corruption found in stored data; it does no I/O',
  ],
];

/** Roots whose files are checked (test/ too: it may import services, but domain rules still apply nowhere there). */
const SOURCE_ROOTS = ['libs', 'services', 'test', 'bench', 'scripts'];
const SOURCE_EXT = /\.(ts|js|mjs|cjs)$/;

const toPosix = (p) => p.split(sep).join('/');

/** Which unit a repository-relative path belongs to: { kind: 'service'|'lib'|'test'|'other', name }. */
export function unitOf(file) {
  const m = /^(services|libs)\/([^/]+)\//.exec(file);
  if (m) return { kind: m[1] === 'services' ? 'service' : 'lib', name: m[2] };
  if (file.startsWith('test/')) return { kind: 'test', name: 'test' };
  return { kind: 'other', name: file.split('/')[0] };
}

/** Whether a repository-relative path is a domain module (pure: no I/O), tests judged by the module they test. */
export function isDomain(file) {
  const subject = file.replace(/\.test\.(ts|js)$/, '.$1');
  if (/^services\/[^/]+\/src\/domain\//.test(subject)) return true;
  if (subject.startsWith('services/broker/src/log/')) return !IO_SHELLS.has(subject);
  return subject === 'services/broker/src/replication/replication-core.ts';
}

/** Every module specifier a source text imports, with its 1-based line. */
export function importsOf(source) {
  const found = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of source.matchAll(re)) {
      found.push({ specifier: m[1], line: source.slice(0, m.index).split('\n').length });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

/**
 * What an import points at: a repository-relative file for relative specifiers (the `.js` of a
 * TypeScript source names its `.ts`), a service for its package name, else the bare package.
 */
function resolve(file, specifier, servicePackages) {
  if (specifier.startsWith('.')) {
    let target = posix.normalize(posix.join(posix.dirname(file), specifier));
    if (file.endsWith('.ts') && target.endsWith('.js')) target = `${target.slice(0, -3)}.ts`;
    return { file: target };
  }
  const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  const service = servicePackages.get(pkg);
  if (service) return { service };
  return { pkg: specifier.replace(/^node:/, '') };
}

function isIo(pkgSpecifier) {
  return IO_MODULES.some((m) => pkgSpecifier === m || pkgSpecifier.startsWith(`${m}/`));
}

/**
 * The violations in one file. `file` is repository-relative with forward slashes; `servicePackages`
 * maps a service's npm name (e.g. '@skein/broker') to its folder name under services/.
 */
export function checkSource(file, source, servicePackages = new Map()) {
  const violations = [];
  const from = unitOf(file);
  for (const { specifier, line } of importsOf(source)) {
    const target = resolve(file, specifier, servicePackages);
    const toService = target.service ?? (target.file && unitOf(target.file).kind === 'service' ? unitOf(target.file).name : undefined);
    const excepted = EXCEPTIONS.some(([f, m]) => f === file && (m === specifier || m === target.pkg));
    if (excepted) continue;
    const at = `${file}:${line}`;
    if (toService !== undefined && from.kind === 'service' && toService !== from.name) {
      violations.push(`${at}: service ${from.name} imports service ${toService} ('${specifier}'); services talk through proto/ contracts only`);
    }
    if (toService !== undefined && from.kind === 'lib') {
      violations.push(`${at}: library ${from.name} imports service ${toService} ('${specifier}'); libraries never depend on services`);
    }
    if (isDomain(file)) {
      if (target.pkg !== undefined && isIo(target.pkg)) {
        violations.push(`${at}: domain module imports '${specifier}' (I/O); pass what it needs in, or move the I/O to the service's shell`);
      }
      // Tests may use fixtures and helpers (services/*/test/...); they are still held to the I/O rule above.
      const isTest = /\.test\.(ts|js)$/.test(file);
      if (!isTest && target.file !== undefined && unitOf(target.file).kind === from.kind && unitOf(target.file).name === from.name && !isDomain(target.file)) {
        violations.push(`${at}: domain module imports '${specifier}', which is not a domain module (it may do I/O)`);
      }
    }
  }
  return violations;
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'gen' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (SOURCE_EXT.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** Every violation under `root` (a repository laid out like this one). */
export function checkRepository(root) {
  const servicePackages = new Map();
  const servicesDir = join(root, 'services');
  if (existsSync(servicesDir)) {
    for (const name of readdirSync(servicesDir)) {
      const pkgFile = join(servicesDir, name, 'package.json');
      if (existsSync(pkgFile)) servicePackages.set(JSON.parse(readFileSync(pkgFile, 'utf8')).name, name);
    }
  }
  const violations = [];
  for (const top of SOURCE_ROOTS) {
    if (!existsSync(join(root, top))) continue;
    for (const path of walk(join(root, top))) {
      violations.push(...checkSource(toPosix(relative(root, path)), readFileSync(path, 'utf8'), servicePackages));
    }
  }
  return violations;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--root');
  const root = i > 0 ? process.argv[i + 1] : dirname(dirname(fileURLToPath(import.meta.url)));
  const violations = checkRepository(root);
  if (violations.length > 0) {
    console.error(`check-boundaries: ${violations.length} import(s) cross the layering (see scripts/check-boundaries.js):`);
    for (const v of violations) console.error(`  ${v}`);
    process.exit(1);
  }
}
