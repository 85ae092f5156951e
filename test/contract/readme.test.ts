import t from 'tap'
import { mask, replayReadme } from '../readme-session.js'

// README.md is one session (see test/readme-session.ts): every `$ ` command of every fenced block,
// in order, against one fresh `npm start`. Each must print what the README shows; only the times
// tally stamps (created_at, updated_at, the day of a grant) are masked.

t.test('every example in the README, replayed as one session, gives the output shown', async t => {
  const outcomes = await replayReadme(t, { sqlite3: 'model' })
  const commands = outcomes.map(o => o.step.command)
  t.ok(outcomes.length >= 60, `${outcomes.length} examples found`)
  for (const kind of ['Idempotency-Key', 'Authorization: Bearer', 'npm run credits:daily', 'sqlite3 ']) {
    t.ok(commands.some(command => command.includes(kind)), `the ${kind} examples are replayed`)
  }
  if (process.env.TALLY_README_WRITE === '1') {
    t.comment('README.md now shows this session\'s outputs: run again without TALLY_README_WRITE to check it')
    return
  }
  for (const { step, actual } of outcomes) t.equal(mask(actual), mask(step.expected), step.command)
})
