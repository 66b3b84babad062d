/**
 * Principals: who a request comes from, as Kafka names them (`User:alice`), and how a verified
 * client certificate becomes one — Kafka's `ssl.principal.mapping.rules` (KIP-371), extended to
 * the subject alternative names.
 *
 * Rules, tried in order; the first that matches names the principal:
 * - `DEFAULT`: the whole subject DN in RFC 2253 form (`CN=alice,OU=eng,O=Acme`), as Kafka;
 * - `RULE:pattern/replacement/[L|U]`: when `pattern` (a regular expression) matches the whole
 *   RFC 2253 subject DN, the name is the DN with the pattern replaced by `replacement` (`$1`...),
 *   lower- or upper-cased by `/L` or `/U`; Kafka's syntax and semantics, `\/` for a slash;
 * - `SAN:<type>:pattern/replacement/[L|U]` (a Skein extension; type DNS, URI, EMAIL or IP): the
 *   same, against each subject alternative name of that type in certificate order; useful where
 *   certificates carry a SPIFFE id (`SAN:URI:^spiffe:\/\/skein\/(.*)$/$1/`; a slash in a pattern is `\/`) or a DNS name.
 * Rules are separated by commas (a comma inside a pattern is fine: the splitter is Kafka's). No
 * rule at all means DEFAULT. When rules are given and none matches, the certificate names no
 * principal and the request is unauthenticated (Kafka refuses the connection).
 *
 * Pure: no I/O; X509Certificate only parses bytes already in memory.
 */

import { X509Certificate } from 'node:crypto';

/** A principal: `type:name`, Kafka's KafkaPrincipal (type `User` for every authenticated client today). */
export interface Principal {
  readonly type: string;
  readonly name: string;
}

/** The principal of a request with no verified identity (Kafka's `User:ANONYMOUS`). */
export const ANONYMOUS: Principal = Object.freeze({ type: 'User', name: 'ANONYMOUS' });

export const principalToString = (p: Principal): string => `${p.type}:${p.name}`;

/** `User:alice` → { type: 'User', name: 'alice' }; the name may contain colons (DNs, SPIFFE ids). */
export function parsePrincipal(text: string): Principal {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) throw new Error(`invalid principal "${text}": expected Type:name, e.g. User:alice`);
  return { type: text.slice(0, i), name: text.slice(i + 1) };
}

/**
 * A list of principals separated by semicolons, as Kafka's `super.users` (a DN-named principal
 * contains commas). A trailing `*` in a name matches any suffix: `User:broker-*`.
 */
export function parsePrincipalList(text: string): Principal[] {
  return text
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(parsePrincipal);
}

/** Whether `p` is one of `list` (exact, or by a `*`-suffixed prefix). */
export function principalMatches(p: Principal, list: readonly Principal[]): boolean {
  return list.some((q) => q.type === p.type && (q.name.endsWith('*') ? p.name.startsWith(q.name.slice(0, -1)) : q.name === p.name));
}

export type SanType = 'DNS' | 'URI' | 'EMAIL' | 'IP';

export type MappingRule =
  | { readonly kind: 'default' }
  | {
      readonly kind: 'rule';
      readonly source: 'DN' | SanType;
      readonly pattern: string;
      readonly replacement: string;
      readonly toLowerCase: boolean;
      readonly toUpperCase: boolean;
    };

// Kafka's rule grammar (SslPrincipalMapper), with the optional SAN source in front of the pattern.
// Groups: 1 DEFAULT, 2 SAN type, 3 pattern, 5 replacement, 7 case flag.
const RULE_PATTERN = String.raw`(DEFAULT)|(?:RULE|SAN:(DNS|URI|EMAIL|IP)):((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)`;
const RULE_SPLITTER = new RegExp(String.raw`\s*(` + RULE_PATTERN + String.raw`)\s*(,\s*|$)`, 'g');
const RULE_PARSER = new RegExp(`^(?:${RULE_PATTERN})`);

/** Parses a rules string; throws an Error naming the first invalid rule. Empty rules are ignored, as in Kafka. */
export function parseMappingRules(rules: string): MappingRule[] {
  const out: MappingRule[] = [];
  for (const split of rules.trim().matchAll(RULE_SPLITTER)) {
    const rule = split[1] ?? '';
    const m = RULE_PARSER.exec(rule);
    if (!m) throw new Error(`invalid principal mapping rule: ${rule}`);
    if (m[0].length !== rule.length) throw new Error(`invalid principal mapping rule: \`${rule}\`, unmatched substring: \`${rule.slice(m[0].length)}\``);
    if (m[1] !== undefined) {
      out.push({ kind: 'default' });
    } else if (m[3] !== undefined) {
      const pattern = m[3];
      try {
        new RegExp(pattern);
      } catch (err) {
        throw new Error(`invalid principal mapping rule: ${rule}: ${(err as Error).message}`);
      }
      out.push({
        kind: 'rule',
        source: (m[2] as SanType | undefined) ?? 'DN',
        pattern,
        replacement: m[5] ?? '',
        toLowerCase: m[7] === 'L',
        toUpperCase: m[7] === 'U',
      });
    }
  }
  return out;
}

/** Applies one rule to one name (a DN or a SAN value): the mapped name, or undefined when it does not match. */
export function applyRule(rule: MappingRule, name: string): string | undefined {
  if (rule.kind === 'default') return name;
  // Java's Matcher.matches(): the pattern must match the whole name; then, as Kafka, String.replaceAll.
  if (!new RegExp(`^(?:${rule.pattern})$`).test(name)) return undefined;
  const result = name.replace(new RegExp(rule.pattern, 'g'), javaReplacement(rule.replacement));
  return rule.toLowerCase ? result.toLowerCase() : rule.toUpperCase ? result.toUpperCase() : result;
}

/**
 * A Java replacement string (`\x` is a literal x, `$n` a group) as a JavaScript one (where a
 * backslash is literal and `$$` is a dollar). `$n` past the group count stays literal in both.
 */
function javaReplacement(replacement: string): string {
  let out = '';
  for (let i = 0; i < replacement.length; i++) {
    const c = replacement[i]!;
    if (c === '\\' && i + 1 < replacement.length) {
      const next = replacement[++i]!;
      out += next === '$' ? '$$' : next;
    } else {
      out += c;
    }
  }
  return out;
}

/** The names a certificate offers the rules: its subject DN (RFC 2253) and its alternative names. */
export interface CertificateNames {
  readonly subject: string;
  readonly subjectAltNames: ReadonlyArray<{ readonly type: SanType; readonly value: string }>;
}

/** The principal name the rules give for these names, or undefined when no rule matches. */
export function mapPrincipalName(names: CertificateNames, rules: readonly MappingRule[]): string | undefined {
  if (rules.length === 0) return names.subject;
  for (const rule of rules) {
    if (rule.kind === 'default' || rule.source === 'DN') {
      const mapped = applyRule(rule, names.subject);
      if (mapped !== undefined) return mapped;
      continue;
    }
    for (const san of names.subjectAltNames) {
      if (san.type !== rule.source) continue;
      const mapped = applyRule(rule, san.value);
      if (mapped !== undefined) return mapped;
    }
  }
  return undefined;
}

/**
 * Node prints a subject one attribute per line, most general first, values escaped as RFC 2253
 * asks (ASN1_STRFLGS_ESC_2253, control characters escaped, so a newline only separates RDNs);
 * RFC 2253 lists the RDNs in reverse, separated by commas, a multi-valued RDN joined by `+`.
 */
export function rfc2253FromNodeSubject(subject: string): string {
  return subject
    .split('\n')
    .filter((l) => l.length > 0)
    .reverse()
    .map((rdn) => rdn.replace(/ \+ /g, '+'))
    .join(',');
}

const SAN_TYPES: Record<string, SanType> = { DNS: 'DNS', URI: 'URI', email: 'EMAIL', 'IP Address': 'IP' };

/**
 * Node's subjectAltName string (`DNS:a, URI:spiffe://x, IP Address:1.2.3.4, email:a@b`) as typed
 * entries. Node quotes (JSON-style) any value with a comma, quote or control character in it.
 */
export function parseSubjectAltNames(text: string | undefined): Array<{ type: SanType; value: string }> {
  if (!text) return [];
  const out: Array<{ type: SanType; value: string }> = [];
  const entry = /(DNS|URI|email|IP Address|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(entry)) {
    const type = SAN_TYPES[m[1]!];
    if (!type) continue;
    const raw = m[2]!;
    out.push({ type, value: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw });
  }
  return out;
}

/** The names of a certificate (DER bytes, PEM text or a parsed X509Certificate). */
export function certificateNames(cert: X509Certificate | Buffer | string): CertificateNames {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return { subject: rfc2253FromNodeSubject(x.subject), subjectAltNames: parseSubjectAltNames(x.subjectAltName) };
}

/**
 * The principal a verified client certificate stands for under `rules` (parseMappingRules), or
 * undefined when no rule matches. The caller must have verified the certificate (the TLS layer
 * does: the shell only reads peer certificates of authorized connections).
 */
export function principalFromCertificate(cert: X509Certificate | Buffer | string, rules: readonly MappingRule[]): Principal | undefined {
  const name = mapPrincipalName(certificateNames(cert), rules);
  return name === undefined || name === '' ? undefined : { type: 'User', name };
}
