import type { NodePresence, PurgeApplier, PurgeBus, PurgeRequest } from './types.js';

/** The single-node bus (no IMGEDGE_REDIS_URL): a purge only has this node to reach. */
export class LocalPurgeBus implements PurgeBus {
  constructor(private readonly apply: PurgeApplier) {}

  publish(req: PurgeRequest): Promise<number> {
    return this.apply(req);
  }

  async catchUp(): Promise<number> {
    return 0;
  }

  async healthy(): Promise<boolean> {
    return true;
  }

  /** Alone, a node sees every purge. */
  unverifiedBefore(): undefined {
    return undefined;
  }

  async nodes(self: NodePresence): Promise<NodePresence[]> {
    return [self];
  }

  async close(): Promise<void> {}
}
