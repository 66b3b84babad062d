/**
 * grpcurl, the parts our docs use, rebuilt on server reflection so that tests can run the docs'
 * grpcurl recipes as written on machines without grpcurl (it has no Debian package).
 *
 * What it does, the way grpcurl does it:
 * - reads the command line like a shell would (quotes, backslash continuations, `$VAR` from a
 *   given environment) and like Go's `flag` package would (flags only before the first positional
 *   argument; unknown flags fail);
 * - `list` asks the server's reflection service (grpc.reflection.v1, falling back to v1alpha when
 *   v1 is UNIMPLEMENTED) to list services; `list <service>` lists its methods; `describe <symbol>`
 *   prints a service, method, message or enum;
 * - `<service>/<method>` (or `<service>.<method>`) asks reflection for the file containing the
 *   service, fetches missing imports by file name, and links the types from those descriptors
 *   only (no .proto files, no generated code) by grpcurl's rules (see Linking: a type from a file
 *   that is not imported, or a misnamed map entry, is an error, as in protobuf-go's protodesc,
 *   which grpcurl uses); then it parses `-d` with the proto3 JSON mapping, rejecting unknown
 *   fields (grpcurl's default), sends an empty message when there is no `-d`, and prints the
 *   answer as proto3 JSON: lowerCamelCase names, 64-bit integers as strings, defaults left out;
 * - with `-import-path DIR -proto FILE` it takes the types from those files (compiled by the buf
 *   CLI, as protoc would) and does not use reflection;
 * - without `-plaintext` it speaks TLS, so a recipe that forgets the flag fails against a
 *   plaintext server, as it would with grpcurl.
 * Unary methods only; streaming methods are refused with a clear error. This is a model of
 * grpcurl built from its source and protobuf-go's, not grpcurl itself: when the two disagree,
 * grpcurl is right.
 *
 * Types are built with @bufbuild/protobuf (the runtime @skein/proto already depends on, reached
 * here through the workspace's node_modules): its JSON mapping is the conformance-tested proto3
 * one, like the jsonpb grpcurl uses.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  clone,
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  isFieldSet,
  toBinary,
  toJson,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  type FileRegistry,
  type JsonValue,
} from '@bufbuild/protobuf';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { FieldDescriptorProtoSchema, FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';

// ---------------------------------------------------------------------------------------------
// Reading recipes out of Markdown
// ---------------------------------------------------------------------------------------------

export interface GrpcurlRecipe {
  /** 1-based line in the Markdown file where the command starts. */
  line: number;
  /** The command as written (continuation lines joined with a space). */
  text: string;
  /** The words the shell would pass to grpcurl (variables expanded). */
  argv: string[];
  /** Those words as grpcurl reads them. */
  command: GrpcurlCommand;
}

/**
 * Every grpcurl command in the fenced code blocks of a Markdown document, in document order.
 * Continuation lines (ending in a backslash) are joined; a `# comment` after the command is dropped;
 * `$NAME` is expanded from `vars`. Throws on a command grpcurl would refuse to parse.
 */
export function extractGrpcurlRecipes(markdown: string, vars: Readonly<Record<string, string>> = {}): GrpcurlRecipe[] {
  const lines = markdown.split('\n');
  const out: GrpcurlRecipe[] = [];
  let fence: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    const opener = /^(`{3,}|~{3,})/.exec(trimmed);
    if (fence === undefined) {
      if (opener) fence = opener[1]![0]!.repeat(opener[1]!.length);
      continue;
    }
    if (trimmed.startsWith(fence) && trimmed.replace(/[`~]/g, '') === '') {
      fence = undefined;
      continue;
    }
    // Join backslash continuations (inside the same block).
    const start = i;
    let logical = raw;
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      logical = logical.replace(/\\\s*$/, ' ') + lines[++i]!.trim();
    }
    const text = logical.trim();
    if (!/^grpcurl(\s|$)/.test(text)) continue;
    try {
      const argv = shellSplit(text, vars);
      out.push({ line: start + 1, text: text.replace(/\s+/g, ' '), argv, command: parseGrpcurl(argv) });
    } catch (err) {
      throw new Error(`line ${start + 1}: ${(err as Error).message}`);
    }
  }
  if (fence !== undefined) throw new Error(`unterminated code fence ${fence} in the Markdown`);
  return out;
}

/**
 * Splits one shell command line into words: single quotes (literal), double quotes (with \\ \" \$ \`
 * escapes), backslash escapes, `$NAME` / `${NAME}` expanded from `vars` (an unknown name is an
 * error, not an empty string), and a trailing `# comment`. Anything else that would make the shell
 * do more than run one command (pipes, redirections, command substitution, `;`, `&`) is refused:
 * a recipe is one grpcurl call.
 */
export function shellSplit(line: string, vars: Readonly<Record<string, string>> = {}): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const push = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      push();
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated single quote in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        if (j >= line.length) throw new Error(`unterminated double quote in: ${line}`);
        const d = line[j]!;
        if (d === '"') break;
        if (d === '$') {
          const v = expandVar(line, j, vars);
          s += v.value;
          j = v.end;
          continue;
        }
        if (d === '`') throw new Error(`command substitution in a recipe is not supported: ${line}`);
        if (d === '\\' && j + 1 < line.length && '\\"$`'.includes(line[j + 1]!)) {
          s += line[j + 1];
          j += 2;
        } else {
          s += d;
          j++;
        }
      }
      word = (word ?? '') + s;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 < line.length) word = (word ?? '') + line[i + 1];
      i += 2;
    } else if (c === '#' && word === undefined) {
      break;
    } else if (c === '$') {
      const v = expandVar(line, i, vars);
      word = (word ?? '') + v.value;
      i = v.end;
    } else if ('|;&<>`()'.includes(c)) {
      throw new Error(`shell construct '${c}' in a recipe is not supported (one grpcurl call per recipe): ${line}`);
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  push();
  return words;
}

/** `$NAME` or `${NAME}` at `at`; `$(` is command substitution and refused. */
function expandVar(line: string, at: number, vars: Readonly<Record<string, string>>): { value: string; end: number } {
  const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(line.slice(at));
  if (!m) throw new Error(`shell expansion at column ${at + 1} is not supported in a recipe: ${line}`);
  const name = (m[1] ?? m[2])!;
  const value = vars[name];
  if (value === undefined) throw new Error(`the recipe uses $${name}, which the test does not define: ${line}`);
  return { value, end: at + m[0].length };
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

export type GrpcurlVerb =
  | { kind: 'list'; symbol?: string }
  | { kind: 'describe'; symbol?: string }
  | { kind: 'invoke'; service: string; method: string };

export interface GrpcurlCommand {
  plaintext: boolean;
  /** The -d value as written, if any. */
  data?: string;
  headers: string[];
  maxTimeSeconds?: number;
  emitDefaults: boolean;
  /** -import-path and -proto: with any -proto, types come from these files, not from reflection. */
  importPaths: string[];
  protoFiles: string[];
  /** host:port as written. */
  address: string;
  verb: GrpcurlVerb;
}

const BOOL_FLAGS = new Set(['plaintext', 'emit-defaults', 'v', 'insecure', 'allow-unknown-fields', 'format-error']);
const VALUE_FLAGS = new Set(['d', 'H', 'max-time', 'connect-timeout', 'authority', 'import-path', 'proto']);

/**
 * Parses grpcurl's arguments like Go's flag package: `-flag`, `--flag`, `-flag=value`,
 * `-flag value`; flags end at the first positional argument. Unknown flags are errors, as in grpcurl.
 */
export function parseGrpcurl(argv: readonly string[]): GrpcurlCommand {
  if (argv[0] !== 'grpcurl') throw new Error(`not a grpcurl command: ${argv.join(' ')}`);
  const cmd: GrpcurlCommand = { plaintext: false, headers: [], emitDefaults: false, importPaths: [], protoFiles: [], address: '', verb: { kind: 'list' } };
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (BOOL_FLAGS.has(name)) {
      const on = value === undefined ? true : value === 'true' ? true : value === 'false' ? false : undefined;
      if (on === undefined) throw new Error(`invalid boolean value "${value}" for -${name}`);
      if (name === 'plaintext') cmd.plaintext = on;
      if (name === 'emit-defaults') cmd.emitDefaults = on;
      if (name === 'insecure' || name === 'allow-unknown-fields') throw new Error(`-${name} is not supported by this test harness`);
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new Error(`flag provided but not defined: -${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`flag needs an argument: -${name}`);
    }
    if (name === 'd') cmd.data = value;
    else if (name === 'H') cmd.headers.push(value);
    else if (name === 'max-time') cmd.maxTimeSeconds = Number(value);
    else if (name === 'import-path') cmd.importPaths.push(value);
    else if (name === 'proto') cmd.protoFiles.push(value);
  }
  const rest = argv.slice(i);
  if (rest.length === 0) throw new Error('too few arguments: grpcurl needs an address');
  cmd.address = rest[0]!;
  if (!/^[^:\s]+:\d+$/.test(cmd.address)) throw new Error(`"${cmd.address}" is not host:port (flags must come before the address)`);
  const [verb, ...args] = rest.slice(1);
  if (verb === undefined) throw new Error('too few arguments: give list, describe or a method');
  if (verb === 'list' || verb === 'describe') {
    if (args.length > 1) throw new Error(`too many arguments after ${verb}: ${args.join(' ')}`);
    cmd.verb = args[0] === undefined ? { kind: verb } : { kind: verb, symbol: args[0] };
  } else {
    if (args.length > 0) throw new Error(`too many arguments: ${args.join(' ')} (flags must come before the address)`);
    const slash = verb.lastIndexOf('/');
    const pos = slash >= 0 ? slash : verb.lastIndexOf('.');
    if (pos <= 0) throw new Error(`given method name "${verb}" is not in expected format: 'service/method' or 'service.method'`);
    cmd.verb = { kind: 'invoke', service: verb.slice(0, pos), method: verb.slice(pos + 1) };
  }
  if (cmd.data !== undefined && cmd.verb.kind !== 'invoke') throw new Error('-d is only for method calls');
  if (cmd.importPaths.length > 0 && cmd.protoFiles.length === 0) throw new Error('-import-path without -proto does nothing');
  return cmd;
}

// ---------------------------------------------------------------------------------------------
// Server reflection client (grpc.reflection.v1 / v1alpha; same messages, hand-encoded)
// ---------------------------------------------------------------------------------------------

export class GrpcurlError extends Error {
  constructor(message: string, readonly code?: grpc.status) {
    super(message);
  }
}

export type ReflectionRequest = { fileByFilename: string } | { fileContainingSymbol: string } | { listServices: string } | { allExtensionNumbersOfType: string };
export type ReflectionResponse =
  | { kind: 'files'; files: Uint8Array[] }
  | { kind: 'services'; names: string[] }
  | { kind: 'extensionNumbers'; baseTypeName: string; numbers: number[] }
  | { kind: 'error'; code: number; message: string };

function encodeReflectionRequest(req: ReflectionRequest): Buffer {
  const w = new BinaryWriter();
  // ServerReflectionRequest: host = 1, file_by_filename = 3, file_containing_symbol = 4,
  // all_extension_numbers_of_type = 6, list_services = 7.
  if ('fileByFilename' in req) w.tag(3, 2).string(req.fileByFilename);
  else if ('fileContainingSymbol' in req) w.tag(4, 2).string(req.fileContainingSymbol);
  else if ('allExtensionNumbersOfType' in req) w.tag(6, 2).string(req.allExtensionNumbersOfType);
  else w.tag(7, 2).string(req.listServices);
  return Buffer.from(w.finish());
}

function decodeReflectionResponse(buf: Buffer): ReflectionResponse {
  // ServerReflectionResponse: file_descriptor_response = 4, all_extension_numbers_response = 5,
  // list_services_response = 6, error_response = 7.
  const r = new BinaryReader(buf);
  let result: ReflectionResponse | undefined;
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 4) {
      const inner = new BinaryReader(r.bytes());
      const files: Uint8Array[] = [];
      while (inner.pos < inner.len) {
        const [f, t] = inner.tag();
        if (f === 1) files.push(inner.bytes());
        else inner.skip(t);
      }
      result = { kind: 'files', files };
    } else if (field === 5) {
      // ExtensionNumberResponse: base_type_name = 1, extension_number = 2 (repeated int32, packed or not).
      const inner = new BinaryReader(r.bytes());
      let baseTypeName = '';
      const numbers: number[] = [];
      while (inner.pos < inner.len) {
        const [f, t] = inner.tag();
        if (f === 1) baseTypeName = inner.string();
        else if (f === 2 && t === 2) {
          const packed = new BinaryReader(inner.bytes());
          while (packed.pos < packed.len) numbers.push(packed.int32());
        } else if (f === 2) numbers.push(inner.int32());
        else inner.skip(t);
      }
      result = { kind: 'extensionNumbers', baseTypeName, numbers };
    } else if (field === 6) {
      const inner = new BinaryReader(r.bytes());
      const names: string[] = [];
      while (inner.pos < inner.len) {
        const [f, t] = inner.tag();
        if (f === 1) {
          const svc = new BinaryReader(inner.bytes());
          while (svc.pos < svc.len) {
            const [sf, st] = svc.tag();
            if (sf === 1) names.push(svc.string());
            else svc.skip(st);
          }
        } else inner.skip(t);
      }
      result = { kind: 'services', names };
    } else if (field === 7) {
      const inner = new BinaryReader(r.bytes());
      let code = 0;
      let message = '';
      while (inner.pos < inner.len) {
        const [f, t] = inner.tag();
        if (f === 1) code = inner.int32();
        else if (f === 2) message = inner.string();
        else inner.skip(t);
      }
      result = { kind: 'error', code, message };
    } else {
      r.skip(wireType);
    }
  }
  if (!result) throw new GrpcurlError('reflection answered without a response message');
  return result;
}

const REFLECTION_METHODS = [
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
];

/**
 * One raw reflection request to `address` (plaintext) on v1 or v1alpha, answered as the server
 * answered it: for the queries grpcurl makes that the commands above do not (protoreflect asks
 * AllExtensionNumbersOfType for each message type it decodes, error details included).
 */
export async function askReflection(address: string, req: ReflectionRequest, version: 'v1' | 'v1alpha' = 'v1', deadlineMs = 10_000): Promise<ReflectionResponse> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    return await new ReflectionClient(client, deadlineMs, `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`).ask(req);
  } finally {
    client.close();
  }
}

/** Asks one reflection request per stream (grpcurl reuses one stream; the answers are the same). */
class ReflectionClient {
  constructor(private readonly client: grpc.Client, private readonly deadlineMs: number, private method?: string) {}

  async ask(req: ReflectionRequest): Promise<ReflectionResponse> {
    const candidates = this.method ? [this.method] : REFLECTION_METHODS;
    let lastErr: unknown;
    for (const method of candidates) {
      try {
        const res = await this.askOn(method, req);
        this.method = method;
        return res;
      } catch (err) {
        lastErr = err;
        if ((err as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) throw err;
      }
    }
    const e = lastErr as grpc.ServiceError;
    throw new GrpcurlError(`server does not support the reflection API (${e.details ?? e.message})`, e.code);
  }

  private askOn(method: string, req: ReflectionRequest): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeBidiStreamRequest(method, (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), { deadline: Date.now() + this.deadlineMs });
      let answered = false;
      call.on('data', (b: Buffer) => {
        if (answered) return;
        answered = true;
        try {
          resolve(decodeReflectionResponse(b));
        } catch (err) {
          reject(err);
        }
        call.end();
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (!answered) reject(err);
      });
      call.on('end', () => {
        if (!answered) reject(new GrpcurlError('reflection stream ended without an answer'));
      });
      call.write(encodeReflectionRequest(req));
    });
  }

  async listServices(): Promise<string[]> {
    const res = await this.ask({ listServices: '*' });
    if (res.kind === 'error') throw new GrpcurlError(`reflection ListServices failed: ${res.message}`, res.code);
    if (res.kind !== 'services') throw new GrpcurlError('reflection answered ListServices with something else');
    return res.names;
  }

  /**
   * The registry of the file declaring `symbol` and its transitive imports: what the server sent
   * with the answer, plus files fetched by name for imports it left out (as grpcurl does), linked
   * by the rules of `linking` (see linkFiles).
   */
  async registryFor(symbol: string, linking: Linking): Promise<FileRegistry> {
    const first = await this.ask({ fileContainingSymbol: symbol });
    if (first.kind === 'error') {
      throw new GrpcurlError(`Symbol not found: ${symbol} (${first.message})`, first.code);
    }
    if (first.kind !== 'files' || first.files.length === 0) throw new GrpcurlError(`reflection sent no file for ${symbol}`);
    const files = new Map<string, FileDescriptorProto>();
    const add = (bytes: Uint8Array) => {
      const fd = fromBinary(FileDescriptorProtoSchema, bytes);
      if (!files.has(fd.name)) files.set(fd.name, fd);
      return fd;
    };
    const root = add(first.files[0]!);
    for (const b of first.files.slice(1)) add(b);
    const pending = [root.name];
    const seen = new Set<string>();
    while (pending.length) {
      const name = pending.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      let fd = files.get(name);
      if (!fd) {
        const res = await this.ask({ fileByFilename: name });
        if (res.kind !== 'files' || res.files.length === 0) {
          throw new GrpcurlError(`Failed to resolve symbol "${symbol}": File not found: ${name}${res.kind === 'error' ? ` (${res.message})` : ''}`);
        }
        for (const b of res.files) add(b);
        fd = files.get(name);
        if (!fd) throw new GrpcurlError(`asked for "${name}", the server sent other files`);
      }
      pending.push(...fd.dependency);
    }
    const linked = linkFiles(files, linking, symbol);
    // Dependencies first (createFileRegistry with a resolver does not always order them so).
    const ordered: FileDescriptorProto[] = [];
    const placed = new Set<string>();
    const place = (name: string) => {
      if (placed.has(name)) return;
      placed.add(name);
      const fd = linked.get(name);
      if (!fd) throw new GrpcurlError(`Failed to resolve symbol "${symbol}": File not found: ${name}`);
      for (const d of fd.dependency) place(d);
      ordered.push(fd);
    };
    place(root.name);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  }
}

/**
 * How descriptors from reflection are linked into types.
 * - 'grpcurl': the rules grpcurl applies (it builds descriptors with protobuf-go's protodesc): a
 *   type reference resolves only to a type declared in the same file or in a file it imports
 *   (directly, or publicly through an import); relative names are looked up scope by scope, as
 *   protoc does; a map field's entry message must be named <FieldName>Entry.
 * - 'lenient': a reference may resolve to a type in any file the server sent; map entry names are
 *   not checked. What a forgiving client does; used to check the recipes themselves (methods,
 *   field names, JSON) where the server's descriptors fail grpcurl's rules.
 */
export type Linking = 'grpcurl' | 'lenient';

interface Declared {
  file: string;
}

/** Copies of the files with every type reference made absolute and the import lists completed (lenient). */
function linkFiles(files: Map<string, FileDescriptorProto>, linking: Linking, symbol: string): Map<string, FileDescriptorProto> {
  const declared = new Map<string, Declared>();
  for (const fd of files.values()) {
    const pkg = fd.package ? `.${fd.package}` : '';
    const walkMsg = (prefix: string, msgs: FileDescriptorProto['messageType']) => {
      for (const m of msgs) {
        declared.set(`${prefix}.${m.name}`, { file: fd.name });
        for (const e of m.enumType) declared.set(`${prefix}.${m.name}.${e.name}`, { file: fd.name });
        walkMsg(`${prefix}.${m.name}`, m.nestedType);
      }
    };
    walkMsg(pkg, fd.messageType);
    for (const e of fd.enumType) declared.set(`${pkg}.${e.name}`, { file: fd.name });
  }
  const fail = (message: string) => new GrpcurlError(`Failed to resolve symbol "${symbol}": ${message}`);

  const out = new Map<string, FileDescriptorProto>();
  for (const original of files.values()) {
    const fd = clone(FileDescriptorProtoSchema, original);
    const visible = new Set<string>([fd.name]);
    const addPublic = (name: string) => {
      if (visible.has(name)) return;
      visible.add(name);
      const dep = files.get(name);
      for (const idx of dep?.publicDependency ?? []) {
        const d = dep!.dependency[idx];
        if (d) addPublic(d);
      }
    };
    for (const d of fd.dependency) addPublic(d);
    const used = new Set<string>();
    /** protoc's lookup: absolute names as they are; relative ones from the innermost scope outwards. */
    const resolve = (ref: string, scope: string, where: string): string => {
      const candidates: string[] = [];
      if (ref.startsWith('.')) candidates.push(ref);
      else {
        const parts = scope ? scope.split('.') : [];
        for (let n = parts.length; n >= 0; n--) candidates.push(`.${[...parts.slice(0, n), ref].join('.')}`);
      }
      for (const c of candidates) {
        const d = declared.get(c);
        if (!d) continue;
        if (linking === 'grpcurl' && !visible.has(d.file)) {
          throw fail(`file "${fd.name}" included an unresolvable reference to "${ref}" (${where}): ${c} is declared in "${d.file}", which "${fd.name}" does not import (its imports: ${fd.dependency.length ? fd.dependency.join(', ') : 'none'})`);
        }
        used.add(d.file);
        return c;
      }
      throw fail(`file "${fd.name}" included an unresolvable reference to "${ref}" (${where})`);
    };
    const walk = (scope: string, msgs: FileDescriptorProto['messageType']) => {
      for (const m of msgs) {
        const fqn = scope ? `${scope}.${m.name}` : m.name;
        for (const f of m.field) {
          // protoc always writes json_name; protobufjs never does. Unset means the default, as in protodesc.
          if (!isFieldSet(f, FieldDescriptorProtoSchema.field.jsonName)) f.jsonName = jsonCamelCase(f.name);
          if (!f.typeName) continue;
          f.typeName = resolve(f.typeName, fqn, `field ${fqn}.${f.name}`);
          const entry = m.nestedType.find((n) => `.${fqn}.${n.name}` === f.typeName);
          if (linking === 'grpcurl' && entry?.options?.mapEntry && entry.name !== mapEntryName(f.name)) {
            throw fail(`message field "${fqn}.${f.name}" is an invalid map: incorrect implicit map entry name (${entry.name}, expected ${mapEntryName(f.name)})`);
          }
        }
        walk(fqn, m.nestedType);
      }
    };
    walk(fd.package, fd.messageType);
    for (const s of fd.service) {
      const fqn = fd.package ? `${fd.package}.${s.name}` : s.name;
      for (const m of s.method) {
        m.inputType = resolve(m.inputType, fqn, `input of ${fqn}.${m.name}`);
        m.outputType = resolve(m.outputType, fqn, `output of ${fqn}.${m.name}`);
      }
    }
    if (linking === 'lenient') {
      used.delete(fd.name);
      for (const u of used) if (!fd.dependency.includes(u)) fd.dependency.push(u);
    }
    out.set(fd.name, fd);
  }
  return out;
}

/** protoc's default JSON name: foo_bar_baz → fooBarBaz. */
function jsonCamelCase(field: string): string {
  let out = '';
  let upper = false;
  for (const c of field) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

/** protoc's name for a map field's entry message: foo_bar → FooBarEntry. */
function mapEntryName(field: string): string {
  let out = '';
  let upper = true;
  for (const c of field) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return `${out}Entry`;
}

// ---------------------------------------------------------------------------------------------
// Running a command
// ---------------------------------------------------------------------------------------------

export interface GrpcurlResult {
  /** What grpcurl would print on stdout. */
  stdout: string;
  /** For method calls: the response as proto3 JSON (parsed). */
  json?: unknown;
}

export interface RunOptions {
  /** Maps the address as written (e.g. skein-metadata:9090) to where the server really is. */
  resolveAddress: (address: string) => string;
  /** Bounds each call (grpcurl's -max-time, if given, takes precedence). Default 10 s. */
  deadlineMs?: number;
  /** How to link the descriptors reflection sends, per symbol (see Linking). Default 'grpcurl'. */
  linking?: Linking | ((symbol: string) => Linking);
  /** For -proto: where the command runs (relative -import-path / -proto resolve from here), and the buf CLI that compiles them. */
  cwd?: string;
  bufBinary?: string;
}

/**
 * Runs one grpcurl command line (as a string, argv, or parsed). Resolves with what grpcurl would
 * print; rejects with a GrpcurlError (carrying the gRPC status code when the server answered one)
 * where grpcurl would exit non-zero.
 */
export async function runGrpcurl(command: string | readonly string[] | GrpcurlCommand, options: RunOptions): Promise<GrpcurlResult> {
  const cmd = typeof command === 'string' ? parseGrpcurl(shellSplit(command)) : Array.isArray(command) ? parseGrpcurl(command) : (command as GrpcurlCommand);
  const deadlineMs = cmd.maxTimeSeconds !== undefined ? cmd.maxTimeSeconds * 1000 : options.deadlineMs ?? 10_000;
  const target = options.resolveAddress(cmd.address);
  const creds = cmd.plaintext ? grpc.credentials.createInsecure() : grpc.credentials.createSsl();
  const client = new grpc.Client(target, creds, cmd.plaintext ? {} : { 'grpc.ssl_target_name_override': cmd.address.split(':')[0]! });
  try {
    const reflection = new ReflectionClient(client, deadlineMs);
    const linkingFor = (symbol: string): Linking => (typeof options.linking === 'function' ? options.linking(symbol) : options.linking ?? 'grpcurl');
    // With -proto, grpcurl takes every type from the files and does not use reflection at all.
    const fromFiles = cmd.protoFiles.length > 0 ? compileProtoFiles(cmd, options) : undefined;
    const source: DescriptorSource = fromFiles
      ? { listServices: async () => fromFiles.services, registryFor: async () => fromFiles.registry }
      : { listServices: () => reflection.listServices(), registryFor: (symbol) => reflection.registryFor(symbol, linkingFor(symbol)) };
    switch (cmd.verb.kind) {
      case 'list': {
        if (cmd.verb.symbol === undefined) {
          const names = [...(await source.listServices())].sort();
          return { stdout: names.map((n) => `${n}\n`).join('') };
        }
        const svc = (await source.registryFor(cmd.verb.symbol)).getService(cmd.verb.symbol);
        if (!svc) throw new GrpcurlError(`Service not found: ${cmd.verb.symbol}`);
        return { stdout: svc.methods.map((m) => `${svc.typeName}.${m.name}\n`).sort().join('') };
      }
      case 'describe': {
        const symbols = cmd.verb.symbol === undefined ? [...(await source.listServices())].sort() : [cmd.verb.symbol];
        let out = '';
        for (const symbol of symbols) out += describe(await source.registryFor(symbol), symbol);
        return { stdout: out };
      }
      case 'invoke':
        return await invoke(client, source, cmd, cmd.verb, deadlineMs);
    }
  } catch (err) {
    if (err instanceof GrpcurlError) throw err;
    const e = err as grpc.ServiceError;
    if (typeof e.code === 'number') {
      throw new GrpcurlError(`ERROR:\n  Code: ${grpc.status[e.code]}\n  Message: ${e.details}`, e.code);
    }
    throw new GrpcurlError((err as Error).message);
  } finally {
    client.close();
  }
}

interface DescriptorSource {
  listServices(): Promise<string[]>;
  registryFor(symbol: string): Promise<FileRegistry>;
}

const compiled = new Map<string, { registry: FileRegistry; services: string[] }>();

/**
 * -import-path DIR -proto FILE: compiles the files (and their imports) with the buf CLI into a
 * FileDescriptorSet, as protoc would, the way grpcurl parses them itself. One import path.
 */
function compileProtoFiles(cmd: GrpcurlCommand, options: RunOptions): { registry: FileRegistry; services: string[] } {
  const cwd = options.cwd ?? process.cwd();
  if (cmd.importPaths.length > 1) throw new GrpcurlError('this harness supports one -import-path');
  const importPath = resolvePath(cwd, cmd.importPaths[0] ?? '.');
  const key = JSON.stringify([importPath, cmd.protoFiles]);
  const hit = compiled.get(key);
  if (hit) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'grpcurl-proto-'));
  try {
    const out = join(dir, 'set.binpb');
    const args = ['build', importPath, ...cmd.protoFiles.flatMap((f) => ['--path', join(importPath, f)]), '--as-file-descriptor-set', '-o', out];
    const res = spawnSync(options.bufBinary ?? 'buf', args, { cwd, encoding: 'utf8', timeout: 60_000 });
    if (res.status !== 0) throw new GrpcurlError(`Failed to process proto source files.: ${res.error?.message ?? res.stderr.trim()}`);
    const set = fromBinary(FileDescriptorSetSchema, readFileSync(out));
    const wanted = new Set(cmd.protoFiles);
    const services = set.file.filter((f) => wanted.has(f.name)).flatMap((f) => f.service.map((sv) => (f.package ? `${f.package}.${sv.name}` : sv.name)));
    const result = { registry: createFileRegistry(set), services };
    compiled.set(key, result);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function invoke(client: grpc.Client, source: DescriptorSource, cmd: GrpcurlCommand, verb: { service: string; method: string }, deadlineMs: number): Promise<GrpcurlResult> {
  let registry: FileRegistry;
  try {
    registry = await source.registryFor(verb.service);
  } catch (err) {
    if (err instanceof GrpcurlError && err.code === grpc.status.NOT_FOUND) {
      throw new GrpcurlError(`Failed to invoke: target server does not expose service "${verb.service}"`, err.code);
    }
    throw err;
  }
  const service = registry.getService(verb.service);
  if (!service) throw new GrpcurlError(`Failed to invoke: target server does not expose service "${verb.service}"`);
  const method = service.methods.find((m) => m.name === verb.method);
  if (!method) throw new GrpcurlError(`Failed to invoke: service "${verb.service}" does not include a method named "${verb.method}"`);
  if (method.methodKind !== 'unary') throw new GrpcurlError(`${service.typeName}/${method.name} is ${method.methodKind}: this harness calls unary methods only`);

  let request: Uint8Array;
  try {
    const json = cmd.data === undefined || cmd.data.trim() === '' ? {} : (JSON.parse(cmd.data) as JsonValue);
    request = toBinary(method.input, fromJson(method.input, json, { ignoreUnknownFields: false }));
  } catch (err) {
    throw new GrpcurlError(`Error invoking method "${service.typeName}/${method.name}": error getting request data: ${(err as Error).message}`);
  }

  const metadata = new grpc.Metadata();
  for (const h of cmd.headers) {
    const colon = h.indexOf(':');
    metadata.add((colon >= 0 ? h.slice(0, colon) : h).trim().toLowerCase(), colon >= 0 ? h.slice(colon + 1).trim() : '');
  }
  const response = await new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(`/${service.typeName}/${method.name}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(request), metadata, { deadline: Date.now() + deadlineMs }, (err, res) => {
      if (err) reject(new GrpcurlError(`ERROR:\n  Code: ${grpc.status[err.code]}\n  Message: ${err.details}`, err.code));
      else resolve(res!);
    });
  });
  const json = toJson(method.output, fromBinary(method.output, response), { alwaysEmitImplicit: cmd.emitDefaults });
  return { stdout: `${JSON.stringify(json, null, 2)}\n`, json };
}

// ---------------------------------------------------------------------------------------------
// describe: protobuf source text, in grpcurl's layout
// ---------------------------------------------------------------------------------------------

function describe(registry: FileRegistry, symbol: string): string {
  const found = registry.get(symbol);
  if (found?.kind === 'service') return `${symbol} is a service:\n${serviceText(found)}\n`;
  if (found?.kind === 'message') return `${symbol} is a message:\n${messageText(found, '')}\n`;
  if (found?.kind === 'enum') return `${symbol} is an enum:\n${enumText(found, '')}\n`;
  const dot = symbol.lastIndexOf('.');
  const svc = dot > 0 ? registry.getService(symbol.slice(0, dot)) : undefined;
  const method = svc?.methods.find((m) => m.name === symbol.slice(dot + 1));
  if (method) return `${symbol} is a method:\n${methodText(method)}\n`;
  throw new GrpcurlError(`Symbol not found: ${symbol}`, grpc.status.NOT_FOUND);
}

function methodText(m: DescMethod): string {
  const inStream = m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming' ? 'stream ' : '';
  const outStream = m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming' ? 'stream ' : '';
  return `rpc ${m.name} ( ${inStream}.${m.input.typeName} ) returns ( ${outStream}.${m.output.typeName} );`;
}

function serviceText(s: DescService): string {
  return `service ${s.name} {\n${s.methods.map((m) => `  ${methodText(m)}\n`).join('')}}`;
}

function fieldType(f: DescField): string {
  switch (f.fieldKind) {
    case 'map': {
      const value = f.mapKind === 'message' ? `.${f.message.typeName}` : f.mapKind === 'enum' ? `.${f.enum.typeName}` : scalarName(f.scalar);
      return `map<${scalarName(f.mapKey)}, ${value}>`;
    }
    case 'list':
      return `repeated ${f.listKind === 'message' ? `.${f.message.typeName}` : f.listKind === 'enum' ? `.${f.enum.typeName}` : scalarName(f.scalar)}`;
    case 'message':
      return `.${f.message.typeName}`;
    case 'enum':
      return `.${f.enum.typeName}`;
    case 'scalar':
      return scalarName(f.scalar);
  }
}

const SCALAR_NAMES: Record<number, string> = { 1: 'double', 2: 'float', 3: 'int64', 4: 'uint64', 5: 'int32', 6: 'fixed64', 7: 'fixed32', 8: 'bool', 9: 'string', 12: 'bytes', 13: 'uint32', 15: 'sfixed32', 16: 'sfixed64', 17: 'sint32', 18: 'sint64' };
function scalarName(t: number): string {
  return SCALAR_NAMES[t] ?? `scalar${t}`;
}

function messageText(m: DescMessage, indent: string): string {
  let out = `${indent}message ${m.name} {\n`;
  for (const nested of m.nestedMessages) if (!nested.proto.options?.mapEntry) out += `${messageText(nested, `${indent}  `)}\n`;
  for (const e of m.nestedEnums) out += `${enumText(e, `${indent}  `)}\n`;
  const inOneof = new Set<DescField>();
  for (const o of m.oneofs) {
    out += `${indent}  oneof ${o.name} {\n`;
    for (const f of o.fields) {
      inOneof.add(f);
      out += `${indent}    ${fieldType(f)} ${f.name} = ${f.number};\n`;
    }
    out += `${indent}  }\n`;
  }
  for (const f of m.fields) if (!inOneof.has(f)) out += `${indent}  ${fieldType(f)} ${f.name} = ${f.number};\n`;
  return `${out}${indent}}`;
}

function enumText(e: DescEnum, indent: string): string {
  return `${indent}enum ${e.name} {\n${e.values.map((v) => `${indent}  ${v.name} = ${v.number};\n`).join('')}${indent}}`;
}
