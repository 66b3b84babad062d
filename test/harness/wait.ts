/** Polls `condition` until it is true or the deadline passes (then throws with `message`). */
export async function waitFor(condition: () => boolean | Promise<boolean>, options: { timeoutMs: number; intervalMs?: number; message: string }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await condition()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting until ${options.message}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}
