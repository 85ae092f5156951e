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
  // Heard, so that a connection breaking now fails the statement in flight, not the process.
  const onError = (): void => {}
  client.on('error', onError)
  let done = false
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    for (const { name, sql, say } of checks) {
      progress(name)
      for (const row of (await client.query(sql)).rows) problems.push(say(row))
    }
    await client.query('COMMIT')
    done = true
    return problems
  } finally {
    client.off('error', onError)
    // After a failure, closed rather than returned: that ends the transaction, whatever state
    // the connection is in.
    client.release(!done)
  }
}
