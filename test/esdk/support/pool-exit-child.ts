/**
 * Child for test/esdk/process-exit.test.ts: uses every background helper of the SDK (the frame
 * pool's worker for large buffered messages, the signing-key pool, the decryptStream spill, the
 * hash worker beside a long signed encryptStream) and then
 * simply returns from its main module. The process must then exit on its own.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decrypt, decryptStream, encrypt, encryptStream } from '../../../src/esdk/index.ts';
import { parallelAvailable } from '../../../src/esdk/parallel/frame-pool.ts';
import { ENGAGE_BYTES, streamHashStats } from '../../../src/esdk/parallel/stream-hash.ts';
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
// Signed streams until one hashed beside (the first may find the signing-key pool still cold).
for (let i = 0; streamHashStats.beside === 0; i++) {
  if (i === 20) throw new Error('no signed encryptStream engaged the hash worker');
  const pieces = [pattern(ENGAGE_BYTES), pattern(ENGAGE_BYTES, 2)];
  await pipeline(Readable.from(pieces), encryptStream({ keyring: aesKeyring }), new Writable({ write(_chunk: Buffer, _encoding, callback) { callback(); } }));
}
for (const suiteId of [0x0478, 0x0578]) {
  const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId });
  if (!(await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.equals(plaintext)) throw new Error('round trip failed');
}
process.stdout.write(`main returned at ${Date.now()}\n`);
// Fires only if something still holds the event loop: names it for the failure message.
setInterval(() => process.stdout.write(`still alive, holding the loop: ${process.getActiveResourcesInfo().join(', ')}\n`), 5000).unref();
