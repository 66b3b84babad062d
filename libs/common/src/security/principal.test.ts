// Principal mapping rules: Kafka's own test vectors (SslPrincipalMapperTest) for the rule grammar
// and the DN rules, then the SAN extension and certificate parsing on certificates the development
// CA (scripts/dev-ca.js) issues.
import { describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from '../../../../scripts/dev-ca.js';
import {
  ANONYMOUS,
  certificateNames,
  mapPrincipalName,
  type MappingRule,
  parseMappingRules,
  parsePrincipal,
  parsePrincipalList,
  parseSubjectAltNames,
  principalFromCertificate,
  principalMatches,
  principalToString,
  rfc2253FromNodeSubject,
} from './principal.js';

/** Kafka's SslPrincipalMapper.Rule.toString, to compare with its splitting vectors. */
function show(rules: MappingRule[]): string {
  return `[${rules
    .map((r) => {
      if (r.kind === 'default') return 'DEFAULT';
      return `RULE:${r.pattern}/${r.replacement}${r.toLowerCase ? '/L' : r.toUpperCase ? '/U' : ''}`;
    })
    .join(', ')}]`;
}

const mapDn = (rules: string, dn: string) => mapPrincipalName({ subject: dn, subjectAltNames: [] }, parseMappingRules(rules));

describe('Kafka ssl.principal.mapping.rules', () => {
  it('accepts the rules Kafka accepts', () => {
    for (const rules of [
      'DEFAULT',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT',
      'RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/',
      'RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L',
      'RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U',
      'RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/',
      'RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/',
    ])
      expect(() => parseMappingRules(rules), rules).not.toThrow();
  });

  it('refuses the rules Kafka refuses', () => {
    for (const rules of [
      'default',
      'DEFAUL',
      'DEFAULT/L',
      'DEFAULT/U',
      'RULE:CN=(.*?),OU=ServiceUsers.*/$1',
      'rule:^CN=(.*?),OU=ServiceUsers.*$/$1/',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/L',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/U',
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/LU',
    ])
      expect(() => parseMappingRules(rules), rules).toThrow(/invalid principal mapping rule/);
  });

  it('maps DNs as Kafka does', () => {
    const rules = [
      'RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L',
      'RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L',
      'RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U',
      'RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U',
      'DEFAULT',
    ].join(', ');
    expect(mapDn(rules, 'CN=Duke,OU=ServiceUsers,O=Org,C=US')).toBe('duke');
    expect(mapDn(rules, 'CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US')).toBe('duke@sme');
    expect(mapDn(rules, 'cn=duke,ou=sme,dc=mycp,dc=com')).toBe('DUKE@SME');
    expect(mapDn(rules, 'cN=duke,OU=JavaSoft,O=Sun Microsystems')).toBe('DUKE');
    expect(mapDn(rules, 'OU=JavaSoft,O=Sun Microsystems,C=US')).toBe('OU=JavaSoft,O=Sun Microsystems,C=US');
  });

  it('splits rules as Kafka does (commas inside patterns, empty rules, escapes)', () => {
    const cases: Array<[string, string]> = [
      ['[]', ''],
      ['[DEFAULT]', 'DEFAULT'],
      ['[RULE:/]', 'RULE://'],
      ['[RULE:.*/]', 'RULE:.*//'],
      ['[RULE:/.*/L]', 'RULE:/.*/L'],
      ['[RULE:/, DEFAULT]', 'RULE://,DEFAULT'],
      ['[RULE:/, DEFAULT]', '  RULE:// ,  DEFAULT  '],
      ['[RULE:   /     , DEFAULT]', '  RULE:   /     / ,  DEFAULT  '],
      ['[RULE:  /     /U, DEFAULT]', '  RULE:  /     /U   ,DEFAULT  '],
      ['[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]', '  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  '],
      ['[]', ',   , , ,      , , ,   '],
      ['[RULE:/, DEFAULT]', ',,RULE://,,,DEFAULT,,'],
      ['[RULE: /   , DEFAULT]', ',  , RULE: /   /    ,,,   DEFAULT, ,   '],
      ['[RULE:   /  /U, DEFAULT]', '     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,'],
      ['[RULE:\\/\\\\\\(\\)\\n\\t/\\/\\/]', 'RULE:\\/\\\\\\(\\)\\n\\t/\\/\\//'],
      ['[RULE:\\**\\/+/*/L, RULE:\\/*\\**/**]', 'RULE:\\**\\/+/*/L,RULE:\\/*\\**/**/'],
      [
        '[RULE:,RULE:,/,RULE:,\\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT]',
        'RULE:,RULE:,/,RULE:,\\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT',
      ],
    ];
    for (const [expected, rules] of cases) expect(show(parseMappingRules(rules)), rules).toBe(expected);
  });

  it('keeps an escaped comma in a DN (Kafka testCommaWithWhitespace)', () => {
    expect(mapDn('RULE:^CN=((\\\\, *|\\w)+)(,.*|$)/$1/,DEFAULT', 'CN=Tkac\\, Adam,OU=ITZ,DC=geodis,DC=cz')).toBe('Tkac\\, Adam');
  });

  it('names no principal when rules are given and none matches; no rules is DEFAULT', () => {
    expect(mapDn('RULE:^CN=(.*),OU=ops$/$1/', 'CN=alice,O=Skein')).toBeUndefined();
    expect(mapDn('', 'CN=alice,O=Skein')).toBe('CN=alice,O=Skein');
  });
});

describe('certificates', () => {
  const ca = createCa({ days: 1 });

  it('reads the subject as RFC 2253 (most specific first) and the alternative names with their types', () => {
    const { certPem } = issueCertificate(ca, {
      commonName: 'broker-1',
      organizationalUnit: 'brokers',
      dnsNames: ['broker-1.skein.svc', 'localhost'],
      ipAddresses: ['127.0.0.1'],
      days: 1,
    });
    const names = certificateNames(certPem);
    expect(names.subject).toBe('CN=broker-1,OU=brokers,O=Skein');
    expect(names.subjectAltNames).toEqual([
      { type: 'DNS', value: 'broker-1.skein.svc' },
      { type: 'DNS', value: 'localhost' },
      { type: 'IP', value: '127.0.0.1' },
    ]);
    expect(principalFromCertificate(certPem, parseMappingRules('RULE:^CN=([^,]+),OU=brokers,.*$/$1/, DEFAULT'))).toEqual({ type: 'User', name: 'broker-1' });
    expect(principalFromCertificate(certPem, parseMappingRules(''))).toEqual({ type: 'User', name: 'CN=broker-1,OU=brokers,O=Skein' });
    // SAN rules: first matching entry of the type, in certificate order.
    expect(principalFromCertificate(certPem, parseMappingRules('SAN:DNS:^([^.]+)\\.skein\\.svc$/$1/U'))).toEqual({ type: 'User', name: 'BROKER-1' });
    expect(principalFromCertificate(certPem, parseMappingRules('SAN:URI:^spiffe:\\/\\/skein\\/(.*)$/$1/'))).toBeUndefined();
  });

  it('parses quoted and multi-valued forms Node prints', () => {
    expect(rfc2253FromNodeSubject('C=US\nO=Acme\\, Inc.\nCN=a + UID=7')).toBe('CN=a+UID=7,O=Acme\\, Inc.,C=US');
    expect(parseSubjectAltNames('DNS:a.b, URI:"spiffe://x/a,b", email:me@x.org, IP Address:::1, DirName:whatever')).toEqual([
      { type: 'DNS', value: 'a.b' },
      { type: 'URI', value: 'spiffe://x/a,b' },
      { type: 'EMAIL', value: 'me@x.org' },
      { type: 'IP', value: '::1' },
    ]);
  });
});

describe('principal names and lists', () => {
  it('parses and prints Type:name; lists are semicolon-separated with * prefixes', () => {
    expect(parsePrincipal('User:CN=a,O=b')).toEqual({ type: 'User', name: 'CN=a,O=b' });
    expect(() => parsePrincipal('alice')).toThrow(/Type:name/);
    expect(principalToString(ANONYMOUS)).toBe('User:ANONYMOUS');
    const list = parsePrincipalList(' User:admin ; User:broker-* ;');
    expect(list).toHaveLength(2);
    expect(principalMatches({ type: 'User', name: 'broker-12' }, list)).toBe(true);
    expect(principalMatches({ type: 'User', name: 'admin' }, list)).toBe(true);
    expect(principalMatches({ type: 'User', name: 'administrator' }, list)).toBe(false);
    expect(principalMatches({ type: 'Group', name: 'admin' }, list)).toBe(false);
  });
});
