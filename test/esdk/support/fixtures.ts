import { generateKeyPairSync } from 'node:crypto';
import { Readable, type Duplex } from 'node:stream';
import { RawAesKeyring, RawRsaKeyring, type CommitmentPolicy } from '../../../src/esdk/index.ts';

export const AES_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
export const aesKeyring = new RawAesKeyring({ keyNamespace: 'strongroom-test', keyName: 'aes-256', wrappingKey: AES_KEY });
export const otherAesKeyring = new RawAesKeyring({ keyNamespace: 'strongroom-test', keyName: 'aes-256', wrappingKey: Buffer.alloc(32, 0x55) });

let rsaPair: { publicKey: string; privateKey: string } | undefined;
export function rsaKeys(): { publicKey: string; privateKey: string } {
  rsaPair ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return rsaPair;
}

export const SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578];

/** The policy that lets a suite encrypt: REQUIRE_* for committing suites, FORBID for the others. */
export function policyFor(suiteId: number): CommitmentPolicy {
  return suiteId >= 0x0478 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT';
}

export function pattern(length: number, seed = 1): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

export async function collect(stream: Duplex, input: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const piped = Readable.from(input).pipe(stream);
  for await (const chunk of piped) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

export function rsaKeyring(padding: 'pkcs1' | 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512', which: 'both' | 'public' | 'private' = 'both'): RawRsaKeyring {
  const { publicKey, privateKey } = rsaKeys();
  return new RawRsaKeyring({
    keyNamespace: 'strongroom-test',
    keyName: 'rsa-2048',
    padding,
    ...(which !== 'private' ? { publicKey } : {}),
    ...(which !== 'public' ? { privateKey } : {}),
  });
}
