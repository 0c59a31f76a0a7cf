// Preload (node --import) for tests that measure a CLI process: on exit, writes the process's peak
// resident set size in bytes to the file named by STRONGROOM_TEST_MAX_RSS_FILE.
import { writeFileSync } from 'node:fs';

const target = process.env.STRONGROOM_TEST_MAX_RSS_FILE;
if (target) process.on('exit', () => writeFileSync(target, String(process.resourceUsage().maxRSS * 1024)));
