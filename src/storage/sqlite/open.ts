import { existsSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

export type Db = Database.Database

export interface TransactionRunner {
  deferred: <T>(work: () => T) => T
}

/**
 * A transaction function built once (better-sqlite3 builds a new one on every db.transaction
 * call), running whatever closure it is given: for repositories whose reads or writes take a
 * closure of the request's own values.
 */
export function transactionRunner (db: Db): TransactionRunner {
  const run = db.transaction((work: () => unknown) => work())
  return {
    deferred: <T>(work: () => T): T => run.deferred(work) as T
  }
}

/**
 * The database file cannot be opened or created. Its message is the one line an operator needs:
 * the path, and the cause as the OS or SQLite gave it.
 */
export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError'
  constructor (path: string, err: unknown) {
    const { code, message } = err as { code: string, message: string }
    // Node's fs messages begin with their code already ("ENOENT: no such file…"); SQLite's do not.
    super(`cannot open DB_PATH ${JSON.stringify(path)}: ${message.startsWith(code) ? message : `${code}: ${message}`}`, { cause: err })
  }
}

/**
 * Creates the missing folders of `dir`, one level at a time from the nearest one that exists.
 * Not mkdirSync's recursive mode: on Node 20 it loops forever on an ENOENT it cannot fix (a
 * folder under /proc), where a plain mkdir fails at once with the OS's reason.
 */
function createFolders (dir: string): void {
  const missing: string[] = []
  for (let folder = dir; !existsSync(folder); folder = dirname(folder)) missing.unshift(folder)
  for (const folder of missing) mkdirSync(folder)
}

/**
 * Opens (creating if needed) the SQLite file with the settings every tally connection uses:
 * WAL so sqlite3 readers and a second process can read while we write, foreign keys on, and a
 * busy timeout so a writer waits for the lock rather than failing. A file or folder that cannot
 * be opened or created throws a DatabaseOpenError.
 *
 * synchronous: with WAL, NORMAL loses nothing committed when the process crashes, but an OS
 * crash or power loss may lose the last commits; FULL syncs every commit to disk and closes that.
 */
export function openDatabase (path: string, synchronous: 'normal' | 'full' = 'normal'): Db {
  let db: Db | undefined
  try {
    if (path !== ':memory:') createFolders(dirname(path))
    db = new Database(path)
    // The first statement reads the file: one that is not a database fails here.
    db.pragma('journal_mode = WAL')
  } catch (err) {
    db?.close()
    throw new DatabaseOpenError(path, err)
  }
  db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  // Measured (npm run bench): a 16 MB page cache keeps the indexes of a million-row history hot,
  // and checkpointing every 10 000 WAL pages rather than 1 000 takes ~20 % off a write (fewer
  // fsyncs); the WAL then peaks around 40 MB.
  db.pragma('cache_size = -16000')
  db.pragma('wal_autocheckpoint = 10000')
  return db
}
