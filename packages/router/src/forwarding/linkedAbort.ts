/** An {@link AbortController} that also aborts when a parent signal does, until released. */
export interface LinkedAbort {
  readonly controller: AbortController;
  /** Stops following the parent (call once the work the controller guards has ended). */
  release(): void;
}

/**
 * A controller of its own that follows `parent` (aborting with the parent's reason): one listener on the
 * parent, removed by `release`. Cheaper per call than `AbortSignal.any`, which on Node 20 ties every
 * dependent signal to its sources through weak references the garbage collector must trace.
 */
export function linkedAbort(parent: AbortSignal): LinkedAbort {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, release: () => {} };
  }
  const follow = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', follow, { once: true });
  return { controller, release: () => parent.removeEventListener('abort', follow) };
}
