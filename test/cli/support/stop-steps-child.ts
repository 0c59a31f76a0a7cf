/** A process that stops through runStopSteps: argv[2] names the scenario (stop-steps.test.ts). */
import pino from 'pino';
import { runStopSteps } from '../../../src/cli/serve-ops.ts';

const logger = pino({ level: 'info' }, pino.destination(2));
const scenario = process.argv[2];
const done: string[] = [];
const step = (name: string) => async () => {
  done.push(name);
  process.stdout.write(`${name}\n`);
};
// A step that never finishes while something (this timer) keeps the process alive.
const hang = () => new Promise<void>(() => setInterval(() => {}, 1000));
const fail = async () => {
  throw new Error('the store refused to close');
};

await runStopSteps(
  [
    ['first', step('first')],
    ['the stuck one', scenario === 'hang' ? hang : scenario === 'fail' ? fail : step('second')],
    ['last', step('last')],
  ],
  300,
  logger,
);
