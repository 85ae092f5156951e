import { checks } from '../checks.js'
import type { Db } from './open.js'

export { checks }

/**
 * Every invariant the ledger promises, checked on a file; answers what is wrong (nothing: []).
 * `progress` hears the name of each check as it starts: on a large file they take a while.
 */
export function checkInvariants (db: Db, progress: (check: string) => void = () => {}): string[] {
  const problems: string[] = []
  progress('SQLite integrity and foreign keys')
  const integrity = db.pragma('integrity_check', { simple: true })
  if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`)
  for (const row of db.pragma('foreign_key_check') as Array<{ table: string, rowid: number, parent: string }>) {
    problems.push(`${row.table} row ${row.rowid}: refers to a missing ${row.parent} row`)
  }
  db.transaction(() => {
    for (const { name, sql, say } of checks) {
      progress(name)
      for (const row of db.prepare(sql).all()) problems.push(say(row))
    }
  }).deferred()
  return problems
}
