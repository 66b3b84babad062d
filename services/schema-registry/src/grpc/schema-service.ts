/**
 * skein.schema.v1.SchemaRegistryService: decode → Registry → encode. The same Registry serves the
 * Confluent REST API, so the two front doors agree by construction. Enums map to the domain's
 * names by their suffix (COMPATIBILITY_LEVEL_FULL → FULL).
 */
import type * as grpc from '@grpc/grpc-js';
import { unary } from '@skein/common/grpc-server.js';
import { principalString } from '@skein/common/security/authorizer.js';
import { type AuthorizeMap, requestAuth } from '@skein/common/security/enforcement.js';
import { SkeinError } from '@skein/common/errors.js';
import {
  CompatibilityLevel,
  Mode as ModeEnum,
  type Schema,
  SchemaRegistryServiceService,
  type SchemaRegistryServiceServer,
  SchemaType as SchemaTypeEnum,
} from '@skein/proto/skein/schema/v1/schema.js';
import { type Mode, parseCompatibilityLevel, parseMode, parseVersion, type SchemaRecord, type SchemaType, type VersionSelector } from '../domain/types.js';
import type { Caller, Registry, SchemaInput, SubjectVersionView } from '../runtime/registry.js';

export { SchemaRegistryServiceService };
export const SCHEMA_SERVICE_NAME = 'skein.schema.v1.SchemaRegistryService';

const TYPE_FROM_WIRE: Record<number, SchemaType> = {
  [SchemaTypeEnum.SCHEMA_TYPE_UNSPECIFIED]: 'AVRO',
  [SchemaTypeEnum.SCHEMA_TYPE_AVRO]: 'AVRO',
  [SchemaTypeEnum.SCHEMA_TYPE_PROTOBUF]: 'PROTOBUF',
  [SchemaTypeEnum.SCHEMA_TYPE_JSON]: 'JSON',
};
const TYPE_TO_WIRE: Record<SchemaType, SchemaTypeEnum> = {
  AVRO: SchemaTypeEnum.SCHEMA_TYPE_AVRO,
  PROTOBUF: SchemaTypeEnum.SCHEMA_TYPE_PROTOBUF,
  JSON: SchemaTypeEnum.SCHEMA_TYPE_JSON,
};

function levelFromWire(v: CompatibilityLevel) {
  if (v === CompatibilityLevel.COMPATIBILITY_LEVEL_UNSPECIFIED) return parseCompatibilityLevel(undefined);
  return parseCompatibilityLevel(CompatibilityLevel[v]?.replace(/^COMPATIBILITY_LEVEL_/, ''));
}
const levelToWire = (level: string) => CompatibilityLevel[`COMPATIBILITY_LEVEL_${level}` as keyof typeof CompatibilityLevel] as CompatibilityLevel;
function modeFromWire(v: ModeEnum): Mode {
  if (v === ModeEnum.MODE_UNSPECIFIED) return parseMode(undefined);
  return parseMode(ModeEnum[v]?.replace(/^MODE_/, ''));
}
const modeToWire = (mode: Mode) => ModeEnum[`MODE_${mode}` as keyof typeof ModeEnum] as ModeEnum;

function schemaFromWire(s: Schema | undefined): SchemaInput {
  if (!s) throw new SkeinError('INVALID_SCHEMA', 'Invalid schema: the request has no schema');
  const schemaType = TYPE_FROM_WIRE[s.schemaType];
  if (!schemaType) throw new SkeinError('INVALID_SCHEMA', `Invalid schema type ${s.schemaType}`);
  return { schema: s.schema, schemaType, references: s.references.map((r) => ({ name: r.name, subject: r.subject, version: r.version })) };
}

const schemaToWire = (r: SchemaRecord): Schema => ({ schemaType: TYPE_TO_WIRE[r.schemaType], schema: r.schema, references: r.references });
const versionToWire = (v: SubjectVersionView) => ({ subject: v.subject, version: v.version, id: v.id, schema: schemaToWire(v), deleted: v.deleted });
/** 0 and -1 mean the latest; anything else must be a valid version number. */
const selector = (v: number): VersionSelector => (v === 0 ? 'latest' : parseVersion(v));
const subjectOrGlobal = (s: string) => (s === '' ? undefined : s);

/**
 * The caller of a gRPC call as the shell's authorization interceptor identified it (certificate or
 * bearer token; ANONYMOUS with the authorizer off, when nothing is enforced).
 */
function callerOf(call: { metadata: grpc.Metadata; getPath(): string; getPeer(): string }): Caller {
  const p = requestAuth(call).principal;
  return { principal: principalString(p), identity: p, rpc: call.getPath().slice(1), client: call.getPeer() };
}

/**
 * What the shell's interceptor enforces per RPC: nothing ('any'), because what a call needs
 * depends on the subjects it touches (a listing filters them): the Registry asks per subject
 * (runtime/subject-authorization.ts). Without this map every RPC would need cluster_action.
 */
export const schemaAuthorizeMap: AuthorizeMap = Object.fromEntries(Object.keys(SchemaRegistryServiceService).map((m) => [m, 'any' as const]));

export function schemaServiceHandlers(registry: Registry): SchemaRegistryServiceServer {
  return {
    registerSchema: unary(async (req, call) => {
      const r = await registry.register(callerOf(call), req.subject, {
        ...schemaFromWire(req.schema),
        id: req.id || undefined,
        version: req.version || undefined,
      });
      return { id: r.id, version: r.version };
    }),
    lookupSchema: unary(async (req, call) => ({
      version: versionToWire(await registry.lookup(callerOf(call), req.subject, schemaFromWire(req.schema), req.includeDeleted)),
    })),
    getSchema: unary(async (req, call) => ({ schema: schemaToWire(await registry.schemaById(callerOf(call), req.id, req.subject || undefined)) })),
    getSchemaUsages: unary(async (req, call) => ({ usages: await registry.versionsById(callerOf(call), req.id, req.includeDeleted) })),
    listSubjects: unary(async (req, call) => ({
      subjects: await registry.listSubjects(callerOf(call), { prefix: req.prefix, includeDeleted: req.includeDeleted }),
    })),
    listVersions: unary(async (req, call) => ({ versions: await registry.listVersions(callerOf(call), req.subject, req.includeDeleted) })),
    getSubjectVersion: unary(async (req, call) => ({
      version: versionToWire(await registry.getVersion(callerOf(call), req.subject, selector(req.version), req.includeDeleted)),
    })),
    getReferencedBy: unary(async (req, call) => ({ ids: await registry.referencedBy(callerOf(call), req.subject, selector(req.version)) })),
    deleteSubject: unary(async (req, call) => ({ versions: await registry.deleteSubject(callerOf(call), req.subject, req.permanent) })),
    deleteSubjectVersion: unary(async (req, call) => ({
      version: await registry.deleteVersion(callerOf(call), req.subject, selector(req.version), req.permanent),
    })),
    checkCompatibility: unary(async (req, call) => {
      const messages = await registry.testCompatibility(
        callerOf(call),
        req.subject,
        req.version === 0 ? 'all' : selector(req.version),
        schemaFromWire(req.schema),
      );
      return { isCompatible: messages.length === 0, messages };
    }),
    getCompatibility: unary(async (req, call) => ({
      level: levelToWire(await registry.getConfig(callerOf(call), subjectOrGlobal(req.subject), req.defaultToGlobal)),
    })),
    setCompatibility: unary(async (req, call) => ({
      level: levelToWire(await registry.setConfig(callerOf(call), subjectOrGlobal(req.subject), levelFromWire(req.level))),
    })),
    deleteCompatibility: unary(async (req, call) => ({ level: levelToWire(await registry.deleteConfig(callerOf(call), subjectOrGlobal(req.subject))) })),
    getMode: unary(async (req, call) => ({ mode: modeToWire(await registry.getMode(callerOf(call), subjectOrGlobal(req.subject), req.defaultToGlobal)) })),
    setMode: unary(async (req, call) => ({
      mode: modeToWire(await registry.setMode(callerOf(call), subjectOrGlobal(req.subject), modeFromWire(req.mode), req.force)),
    })),
    deleteMode: unary(async (req, call) => {
      if (req.subject === '') throw new SkeinError('INVALID_REQUEST', 'DeleteMode needs a subject (set the global mode with SetMode)');
      return { mode: modeToWire(await registry.deleteMode(callerOf(call), req.subject)) };
    }),
  };
}
