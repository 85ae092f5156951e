import type { Work } from '../storage/work.js'

/** Stored answers to keyed writes; the write path uses them through Storage.writeOnce. */
export interface IdempotencyStore {
  /** Deletes keys older than the TTL, in batches; answers how many. */
  purge: () => Work<number>
}

/** The oldest created_at a key may have and still be replayed: older ones are as good as gone. */
export const keyCutoff = (now: Date, ttlMs: number): string => new Date(now.getTime() - ttlMs).toISOString()
