import type { Page, PageRequest } from '../storage/page.js'
import type { Work } from '../storage/work.js'
import type { NewAdd } from './ledger.js'

export type { NewAdd } from './ledger.js'

export interface StoredAdd {
  id: number
  payer: string
  points: number
  timestamp: string
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
}

export interface SpendView {
  id: number
  points: number
  created_at: string
  drawn_from: Draw[]
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
}
