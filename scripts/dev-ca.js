// A development certificate authority for `npm start -- --secure` and the TLS tests: a CA and
// certificates it signs, written as PEM files, in Node without openssl.
//
// node-forge builds and signs the X.509 structures (no dependencies, no install scripts, in wide
// use for exactly this); the RSA key pairs come from Node's own crypto (generateKeyPairSync), so
// key generation is native and fast. node-forge is a devDependency: nothing in a service image
// needs it. These certificates are for development and tests only (short-lived, keys on disk
// unencrypted): production certificates come from the operator's CA or cert-manager.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

const { pki } = forge;

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey: pki.publicKeyFromPem(publicKey), privateKey: pki.privateKeyFromPem(privateKey), privateKeyPem: privateKey };
}

/** A positive random serial (the high bit cleared: DER integers are signed). */
function serial() {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

function validity(cert, days) {
  // Backdated a little so a clock slightly behind still accepts a certificate issued just now.
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + days * 24 * 60 * 60 * 1000);
}

/**
 * Creates a CA: `{ certPem, keyPem }`, valid `days` days.
 * @param {{ commonName?: string, days?: number }} [options]
 */
export function createCa(options = {}) {
  const keys = keyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, options.days ?? 365);
  const subject = [{ name: 'organizationName', value: 'Skein' }, { name: 'commonName', value: options.commonName ?? 'Skein development CA' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: keys.privateKeyPem };
}

/**
 * Issues a certificate signed by `ca` (`{ certPem, keyPem }`), usable as a server and a client
 * certificate (both extended key usages: a Skein service serves and dials with the same one).
 * @param {{ certPem: string, keyPem: string }} ca
 * @param {{ commonName: string, organizationalUnit?: string, dnsNames?: string[], ipAddresses?: string[], days?: number }} options
 */
export function issueCertificate(ca, options) {
  const caCert = pki.certificateFromPem(ca.certPem);
  const caKey = pki.privateKeyFromPem(ca.keyPem);
  const keys = keyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, options.days ?? 90);
  // Most general first (O, OU, CN), as CAs issue them: the RFC 2253 form principals are mapped
  // from lists them in reverse, "CN=alice,OU=...,O=Skein", the form Kafka's rules are written for.
  const subject = [{ name: 'organizationName', value: 'Skein' }];
  if (options.organizationalUnit) subject.push({ shortName: 'OU', value: options.organizationalUnit });
  subject.push({ name: 'commonName', value: options.commonName });
  cert.setSubject(subject);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: keys.privateKeyPem };
}

/** Writes a certificate and its key as `<name>.crt` and `<name>.key` (the key readable by the owner only). */
export function writeCertificate(dir, name, { certPem, keyPem }) {
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(certFile, certPem);
  return { certFile, keyFile };
}

/**
 * The development CA under `dir` (ca.crt, ca.key) and one certificate per entity, created when
 * missing and reused otherwise (a restarted local cluster keeps its identities). Entities:
 * `{ name, commonName?, organizationalUnit?, dnsNames?, ipAddresses? }`. Returns the paths.
 * @param {string} dir
 * @param {Array<{ name: string, commonName?: string, organizationalUnit?: string, dnsNames?: string[], ipAddresses?: string[] }>} entities
 */
export function ensureDevCertificates(dir, entities) {
  mkdirSync(dir, { recursive: true });
  const caFile = join(dir, 'ca.crt');
  const caKeyFile = join(dir, 'ca.key');
  let ca;
  if (existsSync(caFile) && existsSync(caKeyFile)) {
    ca = { certPem: readFileSync(caFile, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8') };
  } else {
    ca = createCa();
    writeCertificate(dir, 'ca', ca);
  }
  const files = {};
  for (const e of entities) {
    const certFile = join(dir, `${e.name}.crt`);
    const keyFile = join(dir, `${e.name}.key`);
    if (!existsSync(certFile) || !existsSync(keyFile)) writeCertificate(dir, e.name, issueCertificate(ca, { commonName: e.commonName ?? e.name, ...e }));
    files[e.name] = { certFile, keyFile };
  }
  return { caFile, caKeyFile, ca, files };
}
