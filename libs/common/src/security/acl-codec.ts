/**
 * ACLs between the contract (skein.metadata.v1 AclBinding / AclFilter, enums) and the authorizer's
 * plain strings (`topic`, `read`, `allow`): the proto enum value is `ACL_<KIND>_<UPPER>`.
 */
import {
  type AclBinding as AclBindingProto,
  type AclFilter as AclFilterProto,
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
} from '@skein/proto/skein/metadata/v1/metadata.js';
import { SkeinError } from '../errors.js';
import {
  type AclBinding,
  type AclFilter,
  aclProblem,
  type Operation,
  OPERATIONS,
  type PatternType,
  type Permission,
  type ResourceType,
  RESOURCE_TYPES,
} from './authorizer.js';

const fromEnum = <T extends string>(e: Record<string, string | number>, prefix: string, value: number): T | undefined => {
  const name = e[value];
  return typeof name === 'string' && name.startsWith(prefix) && !name.endsWith('_UNSPECIFIED') ? (name.slice(prefix.length).toLowerCase() as T) : undefined;
};
const toEnum = (e: Record<string, string | number>, prefix: string, value: string): number => {
  const v = e[`${prefix}${value.toUpperCase()}`];
  return typeof v === 'number' ? v : 0;
};

export const resourceTypeOf = (v: AclResourceType) => fromEnum<ResourceType>(AclResourceType, 'ACL_RESOURCE_TYPE_', v);
export const operationOf = (v: AclOperation) => fromEnum<Operation>(AclOperation, 'ACL_OPERATION_', v);
const patternOf = (v: AclPatternType) => fromEnum<PatternType | 'match'>(AclPatternType, 'ACL_PATTERN_TYPE_', v);
const permissionOf = (v: AclPermission) => fromEnum<Permission>(AclPermission, 'ACL_PERMISSION_', v);

/** A contract binding as the authorizer's, or INVALID_ARGUMENT (INVALID_REQUEST) naming the problem. */
export function aclFromProto(p: AclBindingProto): AclBinding {
  const patternType = patternOf(p.patternType);
  const acl = {
    principal: p.principal,
    resourceType: resourceTypeOf(p.resourceType),
    resourceName: p.resourceName,
    patternType: patternType === 'match' ? undefined : patternType,
    operation: operationOf(p.operation),
    permission: permissionOf(p.permission),
  };
  for (const [field, value] of Object.entries(acl)) {
    if (value === undefined) throw new SkeinError('INVALID_REQUEST', `ACL ${field} is required (not UNSPECIFIED${field === 'patternType' ? ' or MATCH' : ''})`);
  }
  const problem = aclProblem(acl as AclBinding);
  if (problem) throw new SkeinError('INVALID_REQUEST', `invalid ACL: ${problem}`);
  return acl as AclBinding;
}

export function aclToProto(a: AclBinding): AclBindingProto {
  return {
    principal: a.principal,
    resourceType: toEnum(AclResourceType, 'ACL_RESOURCE_TYPE_', a.resourceType),
    resourceName: a.resourceName,
    patternType: toEnum(AclPatternType, 'ACL_PATTERN_TYPE_', a.patternType),
    operation: toEnum(AclOperation, 'ACL_OPERATION_', a.operation),
    permission: toEnum(AclPermission, 'ACL_PERMISSION_', a.permission),
  };
}

export function aclFilterFromProto(f: AclFilterProto | undefined): AclFilter {
  if (!f) return {};
  return {
    ...(f.principal !== undefined ? { principal: f.principal } : {}),
    ...(f.resourceName !== undefined ? { resourceName: f.resourceName } : {}),
    ...(resourceTypeOf(f.resourceType) ? { resourceType: resourceTypeOf(f.resourceType) } : {}),
    ...(patternOf(f.patternType) ? { patternType: patternOf(f.patternType) } : {}),
    ...(operationOf(f.operation) ? { operation: operationOf(f.operation) } : {}),
    ...(permissionOf(f.permission) ? { permission: permissionOf(f.permission) } : {}),
  };
}

export function aclFilterToProto(f: AclFilter): AclFilterProto {
  return {
    principal: f.principal,
    resourceName: f.resourceName,
    resourceType: f.resourceType ? toEnum(AclResourceType, 'ACL_RESOURCE_TYPE_', f.resourceType) : 0,
    patternType: f.patternType ? toEnum(AclPatternType, 'ACL_PATTERN_TYPE_', f.patternType) : 0,
    operation: f.operation ? toEnum(AclOperation, 'ACL_OPERATION_', f.operation) : 0,
    permission: f.permission ? toEnum(AclPermission, 'ACL_PERMISSION_', f.permission) : 0,
  };
}

export { OPERATIONS, RESOURCE_TYPES };
