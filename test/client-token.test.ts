// Bearer tokens from the client and the CLI (issue 14): `token`, `tokenFile` (re-read when it
// changes), `--token`, `--token-file`, SKEIN_TOKEN, attached by a client interceptor, so they work
// over plaintext too (grpc-js refuses call credentials there). Real processes: a metadata service
// and a group coordinator, plaintext, with --authorizer-enabled, a JWKS file and User:admin as the
// only super-user; anonymous calls are refused what needs an ACL.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupAdmin, SkeinClient } from '@skein/client';
import { rejection } from './harness/clients.js';
import { CLI_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';

const dir = mkdtempSync(join(tmpdir(), 'skein-token-'));
const jwksFile = join(dir, 'jwks.json');
const tokenFile = join(dir, 'token');

describe('bearer tokens from the client and the CLI, over plaintext', () => {
  let metadata: ServiceProcess;
  let coordinator: ServiceProcess;
  let sign: (sub: string, expSec?: number) => Promise<string>;
  const security = ['--authorizer-enabled', '--jwt-jwks-file', jwksFile, '--super-users', 'User:admin', '--jwt-clock-tolerance-ms', '0'];

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
    sign = (sub, expSec) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject(sub)
        .setExpirationTime(expSec ?? Math.floor(Date.now() / 1000) + 600)
        .sign(privateKey);
    metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `embedded:${join(dir, 'metadata.db')}`, ...security] });
    coordinator = await startService({
      name: 'coordinator',
      entry: COORDINATOR_ENTRY,
      args: ['--store', `embedded:${join(dir, 'coordinator.db')}`, '--metadata-addresses', metadata.address, ...security],
    });
  });

  afterAll(async () => {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the client sends its token on every call: metadata service and coordinator', async () => {
    const anonymous = new SkeinClient({ metadata: [metadata.address] });
    const admin = new SkeinClient({ metadata: [metadata.address], token: await sign('admin') });
    try {
      expect(await rejection(anonymous.createTopic(`t-${process.pid}`, { partitions: 1, replicationFactor: 1, validateOnly: true }))).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
      });
      const acls = await admin.meta((m) => m.describeAcls.bind(m), {});
      expect(Array.isArray(acls.acls)).toBe(true);
      // Coordinator stubs made with the client's options carry it too.
      const group = `g-${process.pid}`;
      expect(await rejection(new GroupAdmin([coordinator.address]).describeGroup(group))).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        reason: 'GROUP_AUTHORIZATION_FAILED',
      });
      // Authorized: past the ACL check, the group is simply unknown. (Plaintext, the coordinator
      // cannot register itself with the authorizer on, so it is named by address.)
      const groups = new GroupAdmin([coordinator.address], grpc.credentials.createInsecure(), undefined, admin.clientOptions);
      expect(await rejection(groups.describeGroup(group))).toMatchObject({ reason: 'UNKNOWN_GROUP' });
      groups.close();
      // A refused token is UNAUTHENTICATED, never anonymous.
      const expired = new SkeinClient({ metadata: [metadata.address], token: await sign('admin', Math.floor(Date.now() / 1000) - 60) });
      expect(await rejection(expired.listTopics())).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'AUTHENTICATION_FAILED' });
      expired.close();
    } finally {
      anonymous.close();
      admin.close();
    }
  });

  it('reads a token file again when it changes', async () => {
    writeFileSync(tokenFile, `${await sign('admin', Math.floor(Date.now() / 1000) - 60)}\n`);
    const client = new SkeinClient({ metadata: [metadata.address], tokenFile });
    try {
      expect(await rejection(client.meta((m) => m.describeAcls.bind(m), {}))).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      writeFileSync(tokenFile, `${await sign('admin')}\n`);
      await waitFor(
        () =>
          client
            .meta((m) => m.describeAcls.bind(m), {})
            .then(
              () => true,
              () => false,
            ),
        { timeoutMs: 10_000, message: 'the rewritten token file is used' },
      );
    } finally {
      client.close();
    }
  });

  it('the CLI takes --token, --token-file and SKEIN_TOKEN', async () => {
    const cli = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadata.address, '--coordinator', coordinator.address, ...args], {
          env: { ...process.env, SKEIN_TOKEN: '', SKEIN_TOKEN_FILE: '', ...env },
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => resolve({ code, out }));
      });
    const admin = await sign('admin');
    const anonymous = await cli(['acls', 'list']);
    expect(anonymous.code).toBe(1);
    expect(anonymous.out).toContain('CLUSTER_AUTHORIZATION_FAILED');
    expect((await cli(['--token', admin, 'acls', 'list'])).code).toBe(0);
    expect((await cli(['acls', 'list'], { SKEIN_TOKEN: admin })).code).toBe(0);
    writeFileSync(tokenFile, admin);
    expect((await cli(['--token-file', tokenFile, 'acls', 'list'])).code).toBe(0);
    // Through --coordinator too: describing a group needs describe on it.
    const group = await cli(['--token', admin, 'groups', 'describe', `g-${process.pid}`]);
    expect(group.out).toContain('UNKNOWN_GROUP');
    const refused = await cli(['groups', 'describe', `g-${process.pid}`]);
    expect(refused.out).toContain('GROUP_AUTHORIZATION_FAILED');
  });
});
