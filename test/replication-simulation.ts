/**
 * A seeded, deterministic simulation of one partition's replication (in the manner of Kafka's
 * RaftEventSimulationTest): three brokers, a controller, a network that delays, drops and reorders
 * messages, a clock that only moves when the next event is due, and a nemesis that crashes,
 * restarts (sometimes with an empty disk) and pauses brokers. The brokers and the controller make
 * every decision with the production pure functions — replication-core.ts (watermark, ISR, acks,
 * fetch and truncation), the leader-epoch cache, and the controller's partition-state.ts
 * (election, AlterPartition) — so the simulation checks what runs. What it models itself is only
 * the I/O around them (messages, timers, the in-memory log).
 *
 * Invariants, checked after every event:
 * - no acks=all acknowledgement while fewer than min.insync.replicas replicas hold the batch;
 * - no acknowledged record is lost: every member of the controller's ISR holds every acknowledged
 *   record at its offset;
 * - a replica's high watermark never goes back (for the same disk);
 * - replicas never diverge below the high watermark: any two logs agree below the smaller of their
 *   high watermarks.
 *
 * `rules: 'old'` swaps in the rules before the fix (min ISR checked only before append, the
 * watermark over whatever ISR is left) as a negative control.
 */
import {
  acksAllDecision,
  desiredIsr,
  type FollowerProgress,
  followerAction,
  followerFetched,
  followerHighWatermark,
  followersToForget,
  isStalePartitionState,
  type LeaderView,
  leaderFetchDecision,
  mayAppendAcksAll,
  nextHighWatermark,
} from '../services/broker/src/replication/replication-core.js';
import { LeaderEpochCache } from '../services/broker/src/log/leader-epoch-cache.js';
import {
  applyAlterPartition,
  initialPartitionRecord,
  type PartitionRecord,
  reconcilePartition,
} from '../services/metadata/src/domain/partition-state.js';

export interface SimOptions {
  seed: number;
  /** Simulated milliseconds to run. */
  durationMs?: number;
  rules?: 'new' | 'old';
  /** Whether restarts may come back with an empty disk. */
  diskLoss?: boolean;
  /** Print what happens (to replay a failing seed). */
  trace?: boolean;
}

export interface SimResult {
  seed: number;
  violation?: string;
  acked: number;
  events: number;
  elections: number;
  failedAcks: number;
}

// A small, fast, seedable PRNG (mulberry32): the seed alone replays a run.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Entry {
  epoch: number;
  id: number;
}

interface Waiter {
  id: number;
  offset: bigint;
  appendEpoch: number;
}

interface PartitionView {
  leaderId: number;
  leaderEpoch: number;
  partitionEpoch: number;
  isr: readonly number[];
  replicas: readonly number[];
}

class SimBroker {
  alive = true;
  pausedUntil = 0;
  diskGeneration = 0;
  log: Entry[] = [];
  epochs = new LeaderEpochCache();
  hw = 0n;
  state: PartitionView | undefined;
  followers = new Map<number, FollowerProgress>();
  pendingIsr: readonly number[] | undefined;
  leaderSinceMs = 0;
  leaderEpochStartOffset = 0n;
  waiters: Waiter[] = [];
  fetchInFlight = false;
  fetchSeq = 0;
  proposalSeq = 0;
  pendingIsrSinceMs = 0;
  isrRequestInFlight = false;
  /** Bumps on crash: messages and timers of an earlier incarnation are dropped. */
  incarnation = 0;
  lastHeartbeatMs = 0;
  /** Lost its disk and is not back in the ISR yet. */
  recovering = false;
  registeredSinceLoss = true;

  constructor(readonly id: number) {}

  get leo(): bigint {
    return BigInt(this.log.length);
  }

  get isLeader(): boolean {
    return this.state?.leaderId === this.id;
  }

  latestEpoch(): number {
    return this.epochs.latest()?.epoch ?? -1;
  }
}

type Event = { at: number; seq: number; run: () => void };

const MIN_ISR = 2;
const LAG_MS = 100;
const SESSION_MS = 300;
const RETRY_MS = LAG_MS;

export function runSimulation(opts: SimOptions): SimResult {
  const rnd = prng(opts.seed);
  const rules = opts.rules ?? 'new';
  const duration = opts.durationMs ?? 4_000;
  const ids = [0, 1, 2];
  const brokers = ids.map((id) => new SimBroker(id));
  const B = (id: number) => brokers[id]!;
  let record: PartitionRecord = initialPartitionRecord('t', ids);
  const live = new Set(ids);
  const queue: Event[] = [];
  let now = 0;
  let seq = 0;
  let events = 0;
  let nextId = 1;
  let elections = 0;
  let failedAcks = 0;
  const acked = new Map<number, bigint>();
  const hwSeen = new Map<string, bigint>();
  let violation: string | undefined;
  const cut = new Set<string>(); // "a>b": messages from a to b are dropped

  const at = (delayMs: number, run: () => void) => {
    queue.push({ at: now + delayMs, seq: seq++, run });
  };
  const trace = (msg: string) => {
    if (opts.trace) console.log(`t=${now} ${msg}`);
  };
  const fail = (msg: string) => {
    violation ??= `t=${now}ms: ${msg}`;
  };
  const netDelay = () => 1 + Math.floor(rnd() * 15);
  /** Sends a message from `from` to broker `to` (or the controller, -1): delayed, maybe lost. */
  const send = (from: number, to: number, deliver: () => void) => {
    if (rnd() < 0.03 || cut.has(`${from}>${to}`) || cut.has(`${to}>${from}`)) return;
    const target = to >= 0 ? B(to) : undefined;
    const inc = target?.incarnation;
    const attempt = () => {
      if (target) {
        if (!target.alive || target.incarnation !== inc) return;
        if (target.pausedUntil > now) return at(target.pausedUntil - now, attempt);
      }
      deliver();
    };
    at(netDelay(), attempt);
  };

  // --- controller -------------------------------------------------------------------------------
  const metadataSeq = new Map<number, number>(); // per-broker FIFO of the metadata stream
  const publish = () => {
    const snapshot: PartitionView = { leaderId: record.leaderId, leaderEpoch: record.leaderEpoch, partitionEpoch: record.partitionEpoch, isr: [...record.isr], replicas: [...record.replicas] };
    for (const b of brokers) {
      // The watch stream is ordered: deliver after anything already queued for this broker.
      const last = metadataSeq.get(b.id) ?? 0;
      const deliverAt = Math.max(last, now + netDelay());
      metadataSeq.set(b.id, deliverAt);
      const inc = b.incarnation;
      const deliver = () => {
        if (!b.alive || b.incarnation !== inc) return;
        if (b.pausedUntil > now) return at(b.pausedUntil - now, deliver);
        applyMetadata(b, snapshot);
      };
      at(deliverAt - now, deliver);
    }
  };
  const setRecord = (next: PartitionRecord | undefined) => {
    if (!next) return;
    if (next.leaderEpoch !== record.leaderEpoch) elections++;
    record = next;
    trace(`controller: leader ${record.leaderId} epoch ${record.leaderEpoch} isr ${JSON.stringify(record.isr)} pe ${record.partitionEpoch} live ${JSON.stringify([...live])}`);
    for (const b of brokers) if (b.recovering && b.registeredSinceLoss && record.isr.includes(b.id)) b.recovering = false;
    publish();
  };
  const reconcile = () => setRecord(reconcilePartition(record, live, { uncleanLeaderElection: false }));
  const register = (b: SimBroker, newDisk: boolean) => {
    if (newDisk) {
      // KIP-858 (the controller's registration, admin.ts): a broker back with another data
      // directory is fenced — out of every ISR, never elected — before it counts as live.
      live.delete(b.id);
      setRecord(reconcilePartition(record, live, { uncleanLeaderElection: false, fenced: new Set([b.id]) }));
    }
    live.add(b.id);
    b.registeredSinceLoss = true;
    reconcile();
    // A newly registered broker gets the current state even if nothing changed.
    publish();
  };
  const sessionCheck = () => {
    for (const b of brokers) {
      if (live.has(b.id) && now - b.lastHeartbeatMs > SESSION_MS) {
        live.delete(b.id);
        reconcile();
      }
    }
    at(10, sessionCheck);
  };

  // --- broker -----------------------------------------------------------------------------------
  const view = (b: SimBroker): LeaderView => ({
    leaderId: b.id,
    replicas: b.state!.replicas,
    isr: b.state!.isr,
    pendingIsr: b.pendingIsr,
    minInsyncReplicas: MIN_ISR,
    logEndOffset: b.leo,
    highWatermark: b.hw,
    followers: b.followers,
    leaderSinceMs: b.leaderSinceMs,
    leaderEpochStartOffset: b.leaderEpochStartOffset,
  });
  const setHw = (b: SimBroker, hw: bigint) => {
    if (hw > b.leo) hw = b.leo;
    if (hw > b.hw) b.hw = hw;
  };
  const advanceHw = (b: SimBroker) => {
    if (!b.isLeader) return;
    if (rules === 'old') {
      // Before the fix: the minimum over the confirmed ISR, whatever its size.
      let hw = b.leo;
      for (const id of b.state!.isr) {
        if (id === b.id) continue;
        const f = b.followers.get(id);
        if (!f) return;
        if (f.logEndOffset < hw) hw = f.logEndOffset;
      }
      setHw(b, hw);
    } else {
      const before = b.hw;
      setHw(b, nextHighWatermark(view(b)));
      if (b.hw !== before) trace(`broker ${b.id} hw ${before} -> ${b.hw} (isr ${JSON.stringify(b.state!.isr)} pending ${JSON.stringify(b.pendingIsr)} followers ${JSON.stringify([...b.followers].map(([id, f]) => [id, Number(f.logEndOffset)]))})`);
    }
    settleWaiters(b);
  };
  const settleWaiters = (b: SimBroker) => {
    b.waiters = b.waiters.filter((w) => {
      if (!b.isLeader || b.state!.leaderEpoch !== w.appendEpoch) {
        failedAcks++;
        return false;
      }
      const end = w.offset + 1n;
      const d = rules === 'old' ? (b.hw >= end ? { kind: 'ack' as const } : { kind: 'wait' as const }) : acksAllDecision(view(b), end);
      if (d.kind === 'wait') return true;
      if (d.kind === 'fail') {
        failedAcks++;
        return false;
      }
      const holders = brokers.filter((x) => x.log[Number(w.offset)]?.id === w.id).length;
      if (holders < MIN_ISR) fail(`record ${w.id} at offset ${w.offset} acknowledged by broker ${b.id} while only ${holders} replica(s) hold it (min.insync.replicas ${MIN_ISR})`);
      acked.set(w.id, w.offset);
      trace(`broker ${b.id} acks record ${w.id} at ${w.offset} (hw ${b.hw}, holders ${holders})`);
      return false;
    });
  };
  const applyMetadata = (b: SimBroker, s: PartitionView) => {
    if (b.state && isStalePartitionState(b.state, s)) return;
    const epochChanged = !b.state || b.state.leaderEpoch !== s.leaderEpoch;
    const becameLeader = s.leaderId === b.id && !b.isLeader;
    if (epochChanged || becameLeader) {
      b.followers.clear();
      b.pendingIsr = undefined;
      b.leaderSinceMs = now;
      b.leaderEpochStartOffset = b.leo;
    }
    // Newer controller state settles a proposal made against older state (replica-manager.ts).
    if (b.state && s.partitionEpoch > b.state.partitionEpoch) b.pendingIsr = undefined;
    if (b.state && !epochChanged && !becameLeader) for (const id of followersToForget(b.state.isr, s.isr, b.id)) b.followers.delete(id);
    b.state = s;
    trace(`broker ${b.id} applies leader ${s.leaderId} epoch ${s.leaderEpoch} isr ${JSON.stringify(s.isr)} pe ${s.partitionEpoch}; leo ${b.leo} hw ${b.hw}`);
    advanceHw(b);
    settleWaiters(b);
  };
  const produce = () => {
    // The client sends to whoever it believes leads; only a broker that leads accepts.
    const target = B(record.leaderId >= 0 && rnd() < 0.85 ? record.leaderId : ids[Math.floor(rnd() * 3)]!);
    const id = nextId++;
    send(-1, target.id, () => {
      const b = target;
      if (!b.isLeader) return;
      if (rules === 'new' && !mayAppendAcksAll(view(b))) return;
      if (rules === 'old' && b.state!.isr.length < MIN_ISR) return;
      const offset = b.leo;
      b.epochs.assign(b.state!.leaderEpoch, offset);
      b.log.push({ epoch: b.state!.leaderEpoch, id });
      b.waiters.push({ id, offset, appendEpoch: b.state!.leaderEpoch });
      advanceHw(b);
    });
    at(2 + Math.floor(rnd() * 10), produce);
  };
  const fetchTick = (b: SimBroker, inc: number) => {
    if (b.incarnation !== inc || !b.alive) return;
    at(5, () => fetchTick(b, inc));
    if (b.pausedUntil > now || b.fetchInFlight || !b.state || b.isLeader || b.state.leaderId < 0) return;
    const leader = B(b.state.leaderId);
    const req = { replicaId: b.id, leaderEpoch: b.state.leaderEpoch, fetchOffset: b.leo, lastFetchedEpoch: b.leo > 0n ? b.latestEpoch() : -1 };
    b.fetchInFlight = true;
    const fetchId = ++b.fetchSeq;
    // The RPC's deadline: a later answer to this request is ignored, as a cancelled call's is.
    at(60, () => { if (b.incarnation === inc && b.fetchSeq === fetchId) b.fetchInFlight = false; });
    send(b.id, leader.id, () => {
      // Leader side (replica-service.ts).
      if (!leader.isLeader || leader.state!.leaderEpoch !== req.leaderEpoch) return;
      const logView = { logStartOffset: 0n, logEndOffset: leader.leo, endOffsetForEpoch: (e: number) => leader.epochs.endOffsetForEpoch(e, leader.leo), latestEpoch: () => leader.latestEpoch() };
      const d = leaderFetchDecision(logView, req.fetchOffset, req.lastFetchedEpoch);
      let batches: Array<{ offset: bigint; entry: Entry }> = [];
      if (d.kind === 'read') {
        leader.followers.set(req.replicaId, followerFetched(leader.followers.get(req.replicaId), req.fetchOffset, leader.leo, now, leader.leaderSinceMs));
        advanceHw(leader);
        batches = leader.log.slice(Number(req.fetchOffset), Number(req.fetchOffset) + 1 + Math.floor(rnd() * 8)).map((entry, i) => ({ offset: req.fetchOffset + BigInt(i), entry }));
      }
      const answer = { logStartOffset: 0n, highWatermark: leader.hw, divergingEpoch: d.kind === 'diverging' ? { epoch: d.epoch, endOffset: d.endOffset } : undefined, firstBaseOffset: batches[0]?.offset };
      send(leader.id, b.id, () => {
        // Follower side (replica-streams.ts).
        if (b.fetchSeq !== fetchId) return;
        b.fetchInFlight = false;
        if (!b.state || b.state.leaderEpoch !== req.leaderEpoch || b.isLeader) return;
        const action = followerAction({ logStartOffset: 0n, logEndOffset: b.leo }, answer);
        if (action.kind === 'truncate' || action.kind === 'truncate-fully-and-start-at') {
          trace(`broker ${b.id} ${action.kind} ${JSON.stringify(answer.divergingEpoch, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))} leo ${b.leo} hw ${b.hw} epochs ${JSON.stringify(b.epochs.list(), (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}`);
          const to = action.kind === 'truncate' ? action.to : 0n;
          b.log.length = Number(to);
          b.epochs.truncateFromEnd(to);
          if (b.hw > b.leo) b.hw = b.leo;
          return;
        }
        for (const x of batches) {
          if (x.offset !== b.leo) continue;
          b.epochs.assign(x.entry.epoch, x.offset);
          b.log.push(x.entry);
        }
        setHw(b, followerHighWatermark(b.leo, answer.highWatermark));
      });
    });
  };
  // Mirrors isr-manager.ts: a proposal stays pending until its outcome is known.
  const isrTick = (b: SimBroker, inc: number) => {
    if (b.incarnation !== inc || !b.alive) return;
    at(LAG_MS / 4, () => isrTick(b, inc));
    if (b.pausedUntil > now || !b.isLeader || b.isrRequestInFlight) return;
    let proposal: readonly number[] | undefined;
    if (rules === 'new' && b.pendingIsr) {
      if (now - b.pendingIsrSinceMs < RETRY_MS) return;
      proposal = b.pendingIsr;
    } else {
      proposal = desiredIsr(view(b), now, LAG_MS);
    }
    if (!proposal) return;
    const isr = proposal;
    const proposedEpoch = b.state!.leaderEpoch;
    const req = { brokerId: b.id, leaderEpoch: proposedEpoch, partitionEpoch: b.state!.partitionEpoch, newIsr: [...isr] };
    trace(`broker ${b.id} proposes isr ${JSON.stringify(isr)} (hw ${b.hw})`);
    // The old rule: nothing pending counted for the watermark.
    if (rules === 'new') b.pendingIsr = isr;
    b.pendingIsrSinceMs = now;
    b.isrRequestInFlight = true;
    const token = ++b.proposalSeq;
    const settle = (answer?: { ok: true; accepted: PartitionRecord } | { ok: false; reason: string }) => {
      if (b.incarnation !== inc || b.proposalSeq !== token) return;
      b.proposalSeq++;
      b.isrRequestInFlight = false;
      if (answer && b.state && b.state.leaderEpoch === proposedEpoch) {
        if (answer.ok) {
          if (answer.accepted.leaderEpoch === proposedEpoch && answer.accepted.partitionEpoch > b.state.partitionEpoch) {
            b.state = { ...b.state, isr: answer.accepted.isr, partitionEpoch: answer.accepted.partitionEpoch };
          }
          if (b.pendingIsr === isr) b.pendingIsr = undefined;
        } else if (answer.reason === 'INVALID_ISR' && b.pendingIsr === isr) {
          b.pendingIsr = undefined;
        }
      }
      if (rules === 'old') b.pendingIsr = undefined;
      advanceHw(b);
    };
    at(80, () => settle());
    send(b.id, -1, () => {
      const r = applyAlterPartition(record, req, live);
      if ('next' in r) setRecord(r.next);
      const answer = 'next' in r ? { ok: true as const, accepted: r.next } : { ok: false as const, reason: r.problem.reason };
      send(-1, b.id, () => settle(answer));
    });
  };
  const heartbeat = (b: SimBroker, inc: number) => {
    if (b.incarnation !== inc || !b.alive) return;
    if (b.pausedUntil <= now) {
      b.lastHeartbeatMs = now;
      // A broker whose session lapsed (a long pause) registers again, as the real one does.
      if (!live.has(b.id)) at(netDelay(), () => { if (b.incarnation === inc && !live.has(b.id)) register(b, false); });
    }
    at(20, () => heartbeat(b, inc));
  };
  const start = (b: SimBroker) => {
    const inc = b.incarnation;
    b.lastHeartbeatMs = now;
    fetchTick(b, inc);
    isrTick(b, inc);
    heartbeat(b, inc);
  };

  // --- nemesis ----------------------------------------------------------------------------------
  const down = () => brokers.filter((b) => !b.alive).length;
  const nemesis = () => {
    at(100 + Math.floor(rnd() * 300), nemesis);
    const b = B(Math.floor(rnd() * 3));
    const r = rnd();
    const anyRecovering = brokers.some((x) => x.recovering);
    if (r < 0.45 && b.alive && down() < 2 && !anyRecovering) {
      // Empty disks only while the other two hold everything (at most min.insync.replicas - 1 lost).
      // (A follower, so no answer to its own ISR proposal can leave it the last ISR member.)
      const loseDisk = opts.diskLoss === true && down() === 0 && rnd() < 0.35 && record.isr.length === 3 && record.leaderId !== b.id;
      trace(`nemesis: crash ${b.id}${loseDisk ? ' (disk lost)' : ''}`);
      b.alive = false;
      b.incarnation++;
      b.waiters = [];
      b.fetchInFlight = false;
      b.pendingIsr = undefined;
      b.isrRequestInFlight = false;
      b.state = undefined;
      if (loseDisk) {
        b.recovering = true;
        b.registeredSinceLoss = false;
      }
      at(50 + Math.floor(rnd() * 600), () => {
        b.alive = true;
        b.incarnation++;
        if (loseDisk) {
          b.log = [];
          b.epochs = new LeaderEpochCache();
          b.hw = 0n;
          b.diskGeneration++;
        }
        start(b);
        // Registration is a retried RPC in the broker: modelled as delivered.
        at(netDelay(), () => register(b, loseDisk));
      });
    } else if (r < 0.75 && b.alive && b.pausedUntil <= now) {
      b.pausedUntil = now + 50 + Math.floor(rnd() * 400);
      trace(`nemesis: pause ${b.id} until ${b.pausedUntil}`);
    } else if (r < 0.9) {
      const other = (b.id + 1 + Math.floor(rnd() * 2)) % 3;
      const k = `${b.id}>${other}`;
      cut.add(k);
      at(50 + Math.floor(rnd() * 300), () => cut.delete(k));
    }
  };

  // --- invariants -------------------------------------------------------------------------------
  const check = (full: boolean) => {
    for (const b of brokers) {
      const k = `${b.id}/${b.diskGeneration}`;
      const prev = hwSeen.get(k) ?? 0n;
      if (b.hw < prev) fail(`broker ${b.id}'s high watermark went back from ${prev} to ${b.hw}`);
      hwSeen.set(k, b.hw);
    }
    // The full checks are linear in the log: every 16th event and at the end.
    if (!full) return;
    for (const [id, offset] of acked) {
      // The leader the controller chose must hold everything acknowledged.
      const leader = record.leaderId >= 0 ? B(record.leaderId) : undefined;
      if (leader && !leader.recovering && leader.log[Number(offset)]?.id !== id) {
        fail(`acknowledged record ${id} at offset ${offset} is missing on the elected leader ${leader.id} (epoch ${record.leaderEpoch})`);
      }
      for (const m of record.isr) {
        const b = B(m);
        if (b.recovering) continue;
        if (b.log[Number(offset)]?.id !== id) fail(`acknowledged record ${id} at offset ${offset} is missing on ISR member ${m} (ISR ${JSON.stringify(record.isr)}, leader ${record.leaderId})`);
      }
    }
    for (let i = 0; i < brokers.length; i++) {
      for (let j = i + 1; j < brokers.length; j++) {
        const a = B(i);
        const c = B(j);
        const upTo = Number(a.hw < c.hw ? a.hw : c.hw);
        for (let o = 0; o < upTo; o++) {
          if (a.log[o]?.id !== c.log[o]?.id || a.log[o]?.epoch !== c.log[o]?.epoch) {
            fail(`brokers ${i} and ${j} diverge at offset ${o}, below their high watermarks`);
            break;
          }
        }
      }
    }
  };

  for (const b of brokers) start(b);
  publish();
  at(10, sessionCheck);
  at(5, produce);
  at(200, nemesis);
  while (queue.length > 0 && violation === undefined) {
    // Earliest event first; ties in scheduling order, so the seed alone decides the run.
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const e = queue[i]!;
      const m = queue[best]!;
      if (e.at < m.at || (e.at === m.at && e.seq < m.seq)) best = i;
    }
    const e = queue[best]!;
    queue[best] = queue[queue.length - 1]!;
    queue.pop();
    if (e.at > duration) break;
    now = e.at;
    e.run();
    events++;
    check(events % 16 === 0);
  }
  check(true);
  return { seed: opts.seed, violation, acked: acked.size, events, elections, failedAcks };
}
