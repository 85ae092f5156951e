import type { Page, PageRequest } from '../storage/page.js'
import type { Work } from '../storage/work.js'
import type { NewAdd } from './ledger.js'

export type { NewAdd } from './ledger.js'

export interface StoredAdd {
  id: number
  payer: string
  points: number
  timestamp: string
  /** Only when the add has one: the answer of an add without keeps its old shape. */
  expires_at?: string
}

export interface StoredBatch {
  count: number
  first_id: number
  last_id: number
}

export interface PayerPoints {
  payer: string
  points: number
}

export interface Draw {
  transaction_id: number
  payer: string
  timestamp: string
  points: number
}

export interface TransactionView {
  id: number
  payer: string
  points: number
  timestamp: string
  created_at: string
  remaining: number | null
  drawn_from: Draw[]
  expires_at: string | null
  /** A positive add: how many of its points expired. A negative add: null. */
  expired: number | null
}

export interface SpendView {
  id: number
  points: number
  created_at: string
  drawn_from: Draw[]
  /** How many of its points reversals gave back. */
  reversed: number
}

export type HoldStatus = 'pending' | 'captured' | 'voided' | 'expired'

export interface HoldView {
  id: number
  points: number
  status: HoldStatus
  drawn_from: Draw[]
  expires_at: string | null
  created_at: string
  /** A captured hold only. */
  captured?: number
  spend_id?: number
}

export interface CaptureView extends HoldView {
  /** The spend's answer: one entry per payer, negative. */
  spent: PayerPoints[]
}

export interface ReversalView {
  id: number
  spend_id: number
  points: number
  restored_to: Draw[]
  created_at: string
}

export interface ExpirationView {
  id: number
  transaction_id: number
  payer: string
  points: number
  expired_at: string
}

export interface PayerDetails {
  payer: string
  available: number
  held: number
  /** The payer's next expirations, soonest first, at most 10. */
  expiring: Array<{ expires_at: string, points: number }>
}

/**
 * The points ledgers, as the routes see them on either engine. Ledger 0 is the default one;
 * ledger n is user n's, and every method refuses an unknown user with USER_NOT_FOUND. Writes
 * are Work for the write path; reads answer at once.
 */
export interface PointsStore {
  /** Stores an add. A negative add draws its payer's oldest points down, or is refused whole. */
  add: (ledgerId: number, add: NewAdd) => Work<StoredAdd>
  /**
   * Stores `adds` in order, each exactly as add() would, all or none: an add refused (by a rule,
   * or by the iterator, which may check each add as it hands it over) refuses the whole batch
   * with BATCH_REJECTED and its index. The adds share one created_at.
   */
  addBatch: (ledgerId: number, adds: Iterable<NewAdd>) => Work<StoredBatch>
  /** Spends points oldest first across all payers, refused whole when the ledger has fewer. A dry run writes nothing. */
  spend: (ledgerId: number, points: number, dryRun: boolean) => Work<PayerPoints[]>
  /** Every payer of the ledger with its balance, zero included, sorted by payer. */
  balances: (ledgerId: number) => Promise<PayerPoints[]>
  /** The ledger's adds, newest first, with what each still has or, if negative, draws from. */
  listTransactions: (ledgerId: number, page: PageRequest) => Promise<Page<TransactionView>>
  /** The ledger's spends, newest first, each with the adds it drew from. */
  listSpends: (ledgerId: number, page: PageRequest) => Promise<Page<SpendView>>

  /**
   * Whether the ledger has lots or holds past their expiry not yet settled. Every write settles
   * its ledger first; a read asks this and, when it answers true, writes settle() first.
   */
  due: (ledgerId: number) => Promise<boolean>
  /** Settles what came due in the ledger (./ledger.ts settle): expirations written, holds expired. */
  settle: (ledgerId: number) => Work<void>
  /** Up to `limit` ledgers with something due: the sweep's work list. */
  dueLedgers: (limit: number) => Promise<number[]>
  /** Holds `points` (drawn now, in the draw order) until captured, voided or `expiresAt`. */
  hold: (ledgerId: number, points: number, expiresAt: string | null) => Work<HoldView>
  /** Captures `points` of a pending hold (all when undefined) into a spend; the rest goes back. */
  capture: (ledgerId: number, holdId: number, points: number | undefined) => Work<CaptureView>
  /** Gives every point of a pending hold back to its lot. */
  void: (ledgerId: number, holdId: number) => Work<HoldView>
  /** Gives `points` of a spend (all not yet reversed when undefined) back, newest draws first. */
  reverse: (ledgerId: number, spendId: number, points: number | undefined) => Work<ReversalView>
  getHold: (ledgerId: number, holdId: number) => Promise<HoldView>
  listHolds: (ledgerId: number, status: HoldStatus | undefined, page: PageRequest) => Promise<Page<HoldView>>
  listReversals: (ledgerId: number, spendId: number, page: PageRequest) => Promise<Page<ReversalView>>
  listExpirations: (ledgerId: number, page: PageRequest) => Promise<Page<ExpirationView>>
  /** Every payer with its available and held points and next expirations, sorted by payer. */
  balanceDetails: (ledgerId: number) => Promise<PayerDetails[]>
  /** What balances() answered at `at` (stored form, not in the future): from the history rows. */
  balancesAt: (ledgerId: number, at: string) => Promise<PayerPoints[]>
}
