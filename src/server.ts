import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'
import { DatabaseUnreachable } from './storage/postgres/pool.js'
import { DatabaseOpenError } from './storage/sqlite/open.js'

// The only module with side effects: reads the environment, listens, and shuts down cleanly.
let config
try {
  config = loadConfig(process.env)
} catch (err) {
  // loadConfig throws only ConfigError: one line naming the variable.
  process.stderr.write(`tally: invalid configuration: ${(err as Error).message}\n`)
  process.exit(1)
}

const app = buildApp(config)

// On SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then close the database.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  // `err` is set when an uncaught error, not a signal, brought us here.
  app.log.info({ signal, err }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  // A file that cannot be opened, or a server that cannot be reached, is a configuration
  // problem: one line, as for a bad variable.
  if (err instanceof DatabaseOpenError || err instanceof DatabaseUnreachable) process.stderr.write(`tally: ${err.message}\n`)
  else app.log.error({ err }, 'could not start')
  process.exit(1)
}
