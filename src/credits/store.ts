import type { Page, PageRequest } from '../storage/page.js'
import type { Work } from '../storage/work.js'

export type CreditKind = 'add' | 'deduct' | 'reset' | 'external_update' | 'daily_grant'
export type GrantTrigger = 'schedule' | 'startup' | 'command'

export interface CreditBalance {
  user_id: number
  credits: number
  updated_at: string
}

export interface CreditEntry {
  id: number
  kind: CreditKind
  delta: number
  balance_after: number
  created_at: string
}

export interface GrantRun {
  day: string
  trigger: GrantTrigger
  users_credited: number
}

/**
 * Credit balances, as the routes see them on either engine. Every change updates the balance
 * and writes one history entry in the same transaction, so a balance always equals the sum of
 * its entries. USER_NOT_FOUND for an unknown user.
 */
export interface CreditsStore {
  get: (userId: number) => Promise<CreditBalance>
  add: (userId: number, amount: number) => Work<CreditBalance>
  deduct: (userId: number, amount: number) => Work<CreditBalance>
  reset: (userId: number) => Work<CreditBalance>
  /** Sets the balance to what an outside system says it is; the entry records the difference. */
  setExternal: (userId: number, credits: number) => Work<CreditBalance>
  history: (userId: number, page: PageRequest) => Promise<Page<CreditEntry>>
  /**
   * Grants `amount` to every user not yet granted on `day`: at most once per user and day (the
   * schema's key decides), whatever runs it, however often, on however many instances. A user
   * whose balance would pass 2^53−1 is skipped rather than stopping everyone's grant.
   */
  grantDaily: (day: string, amount: number, trigger: GrantTrigger) => Work<GrantRun>
  /** The start-up catch-up: grants for `day` only if no grant ran that day yet; null if one had. */
  catchUp: (day: string, amount: number) => Work<GrantRun | null>
}
