/**
 * Retries an assertion until it passes or `timeoutMs` elapses, then throws its last error. Tests wait for
 * conditions this way instead of sleeping a fixed time, so they are neither slow nor flaky on a busy machine.
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
