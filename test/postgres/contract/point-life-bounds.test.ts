// test/contract/point-life-bounds.test.ts, run on PostgreSQL: the engine is chosen before the file is loaded.
process.env.TALLY_TEST_ENGINE = 'postgres'
await import('../../contract/point-life-bounds.test.js')
