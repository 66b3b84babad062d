/**
 * Error tolerance (Kafka's KIP-298): what happens to a record that fails a stage (conversion, a
 * transform, the sink's put). With `errors.tolerance=none` the task fails (FAILED, with the
 * error's trace in its status) and nothing after the record is delivered; with `all` the record is
 * skipped and, for sinks with `errors.deadletterqueue.topic.name`, written there as it was read
 * (original key, value and headers) with `__connect.errors.*` headers saying where it came from
 * and why. Operations that may succeed later (a sink's put while its database is down) are first
 * retried with exponential backoff for `errors.retry.timeout.ms`. Pure.
 */

export type Stage = 'KEY_CONVERTER' | 'VALUE_CONVERTER' | 'TRANSFORMATION' | 'TASK_PUT' | 'TASK_POLL';

export interface ErrorPolicy {
  tolerateAll: boolean;
  retryTimeoutMs: number;
  retryDelayMaxMs: number;
  deadLetterTopic: string;
  contextHeaders: boolean;
}

export function errorPolicy(config: Readonly<Record<string, string>>): ErrorPolicy {
  return {
    tolerateAll: config['errors.tolerance'] === 'all',
    retryTimeoutMs: Number(config['errors.retry.timeout.ms'] ?? '0'),
    retryDelayMaxMs: Number(config['errors.retry.delay.max.ms'] ?? '60000'),
    deadLetterTopic: config['errors.deadletterqueue.topic.name'] ?? '',
    contextHeaders: (config['errors.deadletterqueue.context.headers.enable'] ?? 'true') === 'true',
  };
}

/** Whether another attempt fits: `elapsedMs` since the first failure, -1 = retry forever. */
export function shouldRetry(policy: ErrorPolicy, elapsedMs: number): boolean {
  return policy.retryTimeoutMs < 0 || elapsedMs < policy.retryTimeoutMs;
}

export interface FailedRecordContext {
  topic: string;
  partition: number;
  offset: bigint;
  connector: string;
  task: number;
  stage: Stage;
  error: unknown;
}

/** Kafka Connect's dead-letter context headers. */
export function deadLetterHeaders(ctx: FailedRecordContext): Array<{ key: string; value: Buffer }> {
  const err = ctx.error as { name?: string; message?: string; stack?: string } | undefined;
  const h = (key: string, value: string) => ({ key: `__connect.errors.${key}`, value: Buffer.from(value, 'utf8') });
  return [
    h('topic', ctx.topic),
    h('partition', String(ctx.partition)),
    h('offset', ctx.offset.toString()),
    h('connector.name', ctx.connector),
    h('task.id', String(ctx.task)),
    h('stage', ctx.stage),
    h('exception.class.name', err?.name ?? 'Error'),
    h('exception.message', String(err?.message ?? err)),
    h('exception.stacktrace', (err?.stack ?? '').slice(0, 4000)),
  ];
}

/** The trace a FAILED task reports: message and stack, bounded. */
export function traceOf(err: unknown): string {
  const e = err as { message?: string; stack?: string; reason?: string };
  const text = e?.stack ?? `${e?.reason ? `${e.reason}: ` : ''}${e?.message ?? String(err)}`;
  return text.slice(0, 8000);
}
