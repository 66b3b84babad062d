// Types for scripts/dev-ca.js (a plain ESM script, used by start-local.js and imported by tests).
export interface Pem { certPem: string; keyPem: string }
export interface IssueOptions { commonName: string; organizationalUnit?: string; dnsNames?: string[]; ipAddresses?: string[]; days?: number }
export interface DevEntity { name: string; commonName?: string; organizationalUnit?: string; dnsNames?: string[]; ipAddresses?: string[] }
export function createCa(options?: { commonName?: string; days?: number }): Pem;
export function issueCertificate(ca: Pem, options: IssueOptions): Pem;
export function writeCertificate(dir: string, name: string, pem: Pem): { certFile: string; keyFile: string };
export function ensureDevCertificates(dir: string, entities: DevEntity[]): {
  caFile: string;
  caKeyFile: string;
  ca: Pem;
  files: Record<string, { certFile: string; keyFile: string }>;
};
