import { ErrorInfo } from '@skein/proto/google/rpc/error_details.js';
import { Status } from '@skein/proto/google/rpc/status.js';
import { describe, expect, it } from 'vitest';
import { LogError } from '../log/log-error.js';
import { toPartitionError, toServiceError } from './error-mapping.js';

describe('broker error encoders', () => {
  it('bound messages and details that echo client input (large trailers never reach the caller)', () => {
    const e = new LogError('INVALID_REQUEST', `unknown topic ${'t'.repeat(100_000)}`, { metadata: { topic: 't'.repeat(100_000) } });
    const status = toServiceError(e);
    expect(Buffer.byteLength(status.details)).toBeLessThan(1100);
    expect(status.details).toMatch(/… \(\d+ more bytes\)$/);
    const details = Status.decode(status.metadata.get('grpc-status-details-bin')[0] as Buffer);
    expect(details.message).toBe(status.details);
    const info = ErrorInfo.decode(details.details[0]!.value);
    expect(Buffer.byteLength(info.metadata.topic!)).toBeLessThan(300);
    expect(info.metadata.retriable).toBe('false');
    expect(Buffer.byteLength(toPartitionError(e).message)).toBeLessThan(1100);
  });
});
