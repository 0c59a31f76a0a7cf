/**
 * Child for test/esdk/process-exit.test.ts: uses every background helper of the SDK (the frame
 * pool's worker for large buffered messages, the signing-key pool, the decryptStream spill) and then
 * simply returns from its main module. The process must then exit on its own.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decrypt, decryptStream, encrypt } from '../../../src/esdk/index.ts';
import { parallelAvailable } from '../../../src/esdk/parallel/frame-pool.ts';
import { aesKeyring, pattern } from './fixtures.ts';

const plaintext = pattern(24 * 1024 * 1024);
if (!parallelAvailable()) throw new Error('the frame pool is not available: this check would prove nothing');
// The frame pool last: its helper is stopped after seconds of idling, and main must return while
// it is still there (so what is checked is that an idle helper never holds the process).
for (const suiteId of [0x0478, 0x0578]) {
  const { ciphertext } = await encrypt(pattern(1024 * 1024), { keyring: aesKeyring, suiteId });
  let received = 0;
  const decryptor = decryptStream({ keyring: aesKeyring, spillThreshold: 0 });
  await pipeline(Readable.from([ciphertext]), decryptor, new Writable({ write(chunk: Buffer, _encoding, callback) { received += chunk.length; callback(); } }));
  if (received !== 1024 * 1024) throw new Error('stream round trip failed');
}
for (const suiteId of [0x0478, 0x0578]) {
  const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId });
  if (!(await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.equals(plaintext)) throw new Error('round trip failed');
}
process.stdout.write(`main returned at ${Date.now()}\n`);
// Fires only if something still holds the event loop: names it for the failure message.
setInterval(() => process.stdout.write(`still alive, holding the loop: ${process.getActiveResourcesInfo().join(', ')}\n`), 5000).unref();
