import { existsSync, linkSync, rmSync } from 'node:fs'
import { loadConfig } from '../config.js'
import { openDatabase } from '../storage/sqlite/open.js'
import { runCli } from './run.js'

// The most pages better-sqlite3 copies in one step: the whole file, so in one read transaction.
const WHOLE_FILE = 0x7fffffff

// `npm run db:backup -- FILE`: a consistent copy of DB_PATH, taken through SQLite's online backup
// API from a connection of its own while the service serves and writes. The copy is made in one
// step, so it is the database as it stood at one moment: every write acknowledged before the
// command started is in it. It is written to FILE.partial and renamed when whole, so FILE is never
// half a backup; an existing FILE is never overwritten.
await runCli(async () => {
  const { dbPath } = loadConfig(process.env)
  if (process.argv.length !== 3) throw new Error('usage: npm run db:backup -- FILE (a file that does not exist yet)')
  const file = process.argv[2]!
  if (existsSync(file)) throw new Error(`${file} already exists: a backup never overwrites a file; name a new one or remove it first`)
  if (!existsSync(dbPath)) throw new Error(`${dbPath} does not exist`)
  const db = openDatabase(dbPath)
  const partial = `${file}.partial`
  try {
    rmSync(partial, { force: true })
    const { totalPages } = await db.backup(partial, { progress: () => WHOLE_FILE })
    // A link, not a rename: it fails (EEXIST) if FILE appeared meanwhile, rather than replace it.
    linkSync(partial, file)
    return `${dbPath} backed up to ${file} (${totalPages} pages)`
  } finally {
    db.close()
    rmSync(partial, { force: true })
  }
})
