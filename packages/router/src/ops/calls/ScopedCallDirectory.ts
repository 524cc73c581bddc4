import { CallDirectory, type ActiveCall } from '../../forwarding/CallDirectory.js';
import type { CallScope } from './CallScope.js';

/**
 * The router's {@link CallDirectory}, which also notes each call's router-assigned call id in the current
 * {@link CallScope}: the forwarder registers a call here as it starts, inside the call's scope, and the
 * call id is otherwise known only to the forwarder.
 */
export class ScopedCallDirectory extends CallDirectory {
  constructor(private readonly scope: CallScope) {
    super();
  }

  override add(call: ActiveCall): void {
    const facts = this.scope.current();
    if (facts && facts.callId === undefined && facts.tool === call.target) facts.callId = call.callId;
    super.add(call);
  }
}
