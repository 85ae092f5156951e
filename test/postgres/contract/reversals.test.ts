// test/contract/reversals.test.ts, run on PostgreSQL: the engine is chosen before the file is loaded.
process.env.TALLY_TEST_ENGINE = 'postgres'
await import('../../contract/reversals.test.js')
