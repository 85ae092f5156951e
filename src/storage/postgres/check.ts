import type pg from 'pg'
import { checks } from '../checks.js'

/**
 * Every invariant the ledger promises, checked on a PostgreSQL database; answers what is wrong
 * (nothing: []). All checks read one snapshot (REPEATABLE READ), so writes committing meanwhile
 * cannot make a consistent database look broken. Foreign keys need no check here: PostgreSQL
 * enforces them always. `progress` hears the name of each check as it starts.
 */
export async function checkInvariantsPostgres (pool: pg.Pool, progress: (check: string) => void = () => {}): Promise<string[]> {
  const problems: string[] = []
  const client = await pool.connect()
  let failed: Error | undefined
  // Heard, so that a connection breaking now fails the statement in flight, not the process.
  const onError = (err: Error): void => { failed = err }
  client.on('error', onError)
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    for (const { name, sql, say } of checks) {
      progress(name)
      for (const row of (await client.query(sql)).rows) problems.push(say(row))
    }
    await client.query('COMMIT')
    return problems
  } catch (err) {
    // Closed rather than returned: that ends the transaction, whatever state the connection is in.
    failed = err as Error
    throw err
  } finally {
    client.off('error', onError)
    client.release(failed)
  }
}
