// Loaded (--import) into every process `node --test` runs, by scripts/run-tests.mjs. In a test
// file's own process it makes stdout, the pipe that carries the test results to the runner,
// blocking. With --test-force-exit, Node 20 exits a test file's process as soon as its tests have
// finished, and results still queued on a non-blocking pipe were lost: the summary then counted
// fewer tests than had run (here 2 runs in 15 of test/policy/evaluate.test.ts lost a suite), and
// a failure's name and error could go missing (nodejs/node#64833). Blocking writes cannot be left
// behind. Nothing else is touched: not the runner's own output, and not the processes tests spawn.
if (process.env.NODE_TEST_CONTEXT?.startsWith('child') && /\.test\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  process.stdout._handle?.setBlocking?.(true);
}
