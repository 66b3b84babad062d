/**
 * Starts test/harness/group-member.ts as its own process (tracked, so it is stopped by pid even if
 * the test fails) and collects the events it reports into `events`, in arrival order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { MemberEvent } from './group-member.js';
import { track } from './processes.js';

// From the source (vitest) and from test/dist alike, the compiled entry is test/dist/group-member.js.
const MEMBER_ENTRY = new URL('../dist/group-member.js', import.meta.url).pathname;

export interface MemberProcessOptions {
  name: string;
  group: string;
  topics: string[];
  metadata: string;
  coordinators: string[];
}

export function spawnMember(options: MemberProcessOptions, events: MemberEvent[]): ChildProcess {
  const child = spawn(process.execPath, [MEMBER_ENTRY], {
    env: { ...process.env, MEMBER: options.name, GROUP: options.group, TOPICS: options.topics.join(','), SKEIN_METADATA: options.metadata, SKEIN_COORDINATORS: options.coordinators.join(',') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(child);
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as MemberEvent);
  });
  return child;
}
