/**
 * A consumer-group member as its own process, for tests that SIGKILL members: a GroupConsumer
 * that reports, one JSON line per event on stdout, when it applied an assignment, when it released
 * partitions, and every record it processed. The test reconstructs ownership intervals and
 * delivery from these lines. Configured by environment: SKEIN_METADATA, SKEIN_COORDINATORS
 * (comma-separated), GROUP, TOPICS (comma-separated), MEMBER, and SESSION=unary for unary heartbeats.
 */
import { GroupConsumer, SkeinClient } from '@skein/client';

export type MemberEvent =
  | { e: 'start'; member: string; t: number }
  | { e: 'assigned' | 'revoked'; member: string; partitions: string[]; t: number }
  | { e: 'record'; member: string; partition: string; offset: string; t: number };

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const member = env('MEMBER');
const emit = (event: MemberEvent): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

emit({ e: 'start', member, t: Date.now() });
const client = new SkeinClient({ metadata: env('SKEIN_METADATA').split(',') });
const consumer = new GroupConsumer(client, {
  groupId: env('GROUP'),
  coordinator: env('SKEIN_COORDINATORS').split(','),
  topics: env('TOPICS').split(','),
  clientId: member,
  autoCommitIntervalMs: 200,
  session: process.env.SESSION === 'unary' ? 'unary' : 'stream',
  onAssigned: (partitions) => emit({ e: 'assigned', member, partitions, t: Date.now() }),
  onRevoked: (partitions) => emit({ e: 'revoked', member, partitions, t: Date.now() }),
});
await consumer.run({
  eachMessage: (m) => emit({ e: 'record', member, partition: `${m.topic}:${m.partition}`, offset: m.offset.toString(), t: Date.now() }),
});
process.once('SIGTERM', () => {
  void consumer.close().then(() => {
    client.close();
    process.exit(0);
  });
});
