/** One purge, as every node applies it. Sources are already resolved to cache source hashes. */
export interface PurgeRequest {
  id: string; // random UUID
  at: number; // epoch ms
  sourceHashes: string[]; // every variant of these sources
  prefixes: { site: string; prefix: string }[]; // source paths starting with prefix, per site
  tags: string[];
  all: boolean;
}

/** Applies a purge to this node's cache; answers the variants removed on this node. */
export type PurgeApplier = (req: PurgeRequest) => Promise<number>;

export interface PurgeBus {
  /** Applies on this node (answers its count) and hands the purge to every other node. Throws EdgeError('EDGE_PURGE_UNAVAILABLE', …) when the shared store cannot be reached; then nothing is applied anywhere. */
  publish(req: PurgeRequest): Promise<number>;
  /** Applies every purge this node has not applied yet (from the shared log), in order. Called at start-up before serving, and after a reconnect. Answers how many purges were applied. */
  catchUp(): Promise<number>;
  /** true while the shared store answers (always true for the local bus) */
  healthy(): Promise<boolean>;
  /**
   * Until this node has read the shared purge log once since it started, its start time: entries
   * stored before it may have been removed by a purge published while the node was down, and are
   * revalidated with the origin before they are served. Undefined once the log has been read.
   */
  unverifiedBefore(): number | undefined;
  /** Says this node is alive (for about 15 s) and answers every node alive now, this one included: the dashboard's node list. */
  nodes(self: NodePresence): Promise<NodePresence[]>;
  close(): Promise<void>;
}

/** What a node tells the others about itself. */
export interface NodePresence {
  /** host:port of the process */
  name: string;
  /** ms since the epoch, by the node's clock */
  seen: number;
  startedAt: number;
  requests: number;
}
