/**
 * Connector configuration definitions (Kafka Connect's ConfigDef): every plugin declares its keys
 * with a type, a default (or none: required), documentation and an optional validator, and the
 * runtime validates a configuration against them before anything is written. Configurations are
 * flat string maps (`Record<string, string>`), as on Kafka Connect's REST API, so a configuration
 * looks the same in the contract, the CLI and the config topic.
 *
 * Pure: no I/O; `validateConfig` returns every problem (per key) instead of stopping at the first.
 */

export type ConfigType = 'string' | 'int' | 'boolean' | 'list' | 'password';

export interface ConfigKeyDef {
  name: string;
  type: ConfigType;
  doc: string;
  /** Absent: the key is required. */
  default?: string;
  /** Allowed values (for `string`): anything else is an error. */
  choices?: readonly string[];
  /** For `int`: inclusive bounds. */
  min?: number;
  max?: number;
  /** Extra check on a present value; returns the problem or undefined. */
  validate?: (value: string) => string | undefined;
}

export interface KeyResult {
  def: ConfigKeyDef;
  value: string | undefined;
  errors: string[];
}

export interface ValidationResult {
  keys: KeyResult[];
  errorCount: number;
}

/** The problem with `value` for `def`, or undefined when it is valid. */
export function checkValue(def: ConfigKeyDef, value: string): string | undefined {
  switch (def.type) {
    case 'int': {
      if (!/^-?\d+$/.test(value.trim())) return `${def.name} must be an integer, got "${value}"`;
      const n = Number(value);
      if (def.min !== undefined && n < def.min) return `${def.name} must be at least ${def.min}, got ${n}`;
      if (def.max !== undefined && n > def.max) return `${def.name} must be at most ${def.max}, got ${n}`;
      break;
    }
    case 'boolean':
      if (value !== 'true' && value !== 'false') return `${def.name} must be true or false, got "${value}"`;
      break;
    case 'string':
      if (def.choices && !def.choices.includes(value)) return `${def.name} must be one of ${def.choices.join(', ')}, got "${value}"`;
      break;
    default:
      break;
  }
  return def.validate?.(value);
}

/** Validates `config` against `defs`: a missing required key, a wrong type, a failed validator. Unknown keys are allowed (transforms, converters and plugins read their own). */
export function validateConfig(defs: readonly ConfigKeyDef[], config: Readonly<Record<string, string>>): ValidationResult {
  const keys = defs.map((def): KeyResult => {
    const value = config[def.name];
    const errors: string[] = [];
    if (value === undefined) {
      if (def.default === undefined) errors.push(`${def.name} is required`);
    } else {
      const problem = checkValue(def, value);
      if (problem) errors.push(problem);
    }
    return { def, value, errors };
  });
  return { keys, errorCount: keys.reduce((n, k) => n + k.errors.length, 0) };
}

/** Typed access to a validated configuration, defaults applied. */
export class ParsedConfig {
  constructor(
    private readonly defs: readonly ConfigKeyDef[],
    readonly raw: Readonly<Record<string, string>>,
  ) {}

  private value(name: string): string {
    const v = this.raw[name] ?? this.defs.find((d) => d.name === name)?.default;
    if (v === undefined) throw new Error(`config ${name} is required`);
    return v;
  }

  string(name: string): string {
    return this.value(name);
  }

  int(name: string): number {
    return Number.parseInt(this.value(name), 10);
  }

  boolean(name: string): boolean {
    return this.value(name) === 'true';
  }

  list(name: string): string[] {
    return splitList(this.value(name));
  }
}

/** A comma-separated list, entries trimmed, empty ones dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Connector names as Kafka topic-ish names, so derived topic, group and slot names stay valid. */
export function invalidConnectorName(name: string): string | undefined {
  if (name.length === 0 || name.length > 200) return 'a connector name is 1-200 characters';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return `connector name "${name}" has characters other than [A-Za-z0-9._-]`;
  return undefined;
}
