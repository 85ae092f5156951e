import { ConfigError } from '../config.js'
import { DatabaseUnreachable } from '../storage/postgres/pool.js'
import { DatabaseOpenError } from '../storage/sqlite/open.js'

/** Runs an operator command: prints its one-line result, or the error and exit code 1. */
export async function runCli (command: () => Promise<string>): Promise<void> {
  try {
    process.stdout.write(`${await command()}\n`)
  } catch (err) {
    const message = err instanceof ConfigError
      ? `invalid configuration: ${err.message}`
      : err instanceof DatabaseOpenError || err instanceof DatabaseUnreachable ? err.message : String(err)
    process.stderr.write(`tally: ${message}\n`)
    process.exitCode = 1
  }
}
