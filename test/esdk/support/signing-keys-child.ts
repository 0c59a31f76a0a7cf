/**
 * Makes ECDSA signing keys in a loop, both on this thread (generateSigningKey's own path) and from
 * the background pool, and prints "done" (signing-keys.test.ts runs it under --gc-interval, where
 * the bare generateKeyPairSync + JWK export pattern deadlocks within about 750 keys).
 */
import { makeSigningKey } from '../../../src/esdk/signing.ts';
import { takePresignMaterial } from '../../../src/esdk/signing-key-pool.ts';

const count = Number(process.argv[2] ?? 300);
for (let index = 0; index < count; index++) makeSigningKey(index % 2 === 0 ? 'P-384' : 'P-256');
let taken = 0;
for (const started = Date.now(); taken < count && Date.now() - started < 60_000; ) {
  if (takePresignMaterial('P-384')) taken++;
  else await new Promise((resolve) => setTimeout(resolve, 5));
}
process.stdout.write(`done ${count} here, ${taken} from the pool\n`);
