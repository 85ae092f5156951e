// The bench's baseline: a bare Fastify app, one JSON GET route, logger off, in its own process.
// Every tally scenario is given as a ratio to this, measured right before it in the same run.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
