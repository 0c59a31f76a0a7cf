import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { MessageSigner, registerPresigned } from '../../src/esdk/ecdsa-presigned.ts';
import { getAlgorithmSuite } from '../../src/esdk/index.ts';
import { verificationKeyFromContext } from '../../src/esdk/signing.ts';
import { takePresignMaterial, type PresignMaterial } from '../../src/esdk/signing-key-pool.ts';

const ORDER = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};
const NODE_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' } as const;
const big = (b64: string): bigint => BigInt(`0x${Buffer.from(b64, 'base64url').toString('hex')}`);

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  for (base %= modulus; exponent > 0n; exponent >>= 1n, base = (base * base) % modulus) if (exponent & 1n) result = (result * base) % modulus;
  return result;
}

/** Material built the slow, obvious way in the test, independent of the pool worker. */
function material(curve: 'P-256' | 'P-384'): PresignMaterial {
  const signing = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] });
  const nonce = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] }).privateKey.export({ format: 'jwk' });
  const n = ORDER[curve];
  return {
    curve,
    privateKey: signing.privateKey,
    publicKeyBase64: '',
    d: big(signing.privateKey.export({ format: 'jwk' }).d!),
    r: big(nonce.x!) % n,
    kInverse: modPow(big(nonce.d!), n - 2n, n),
  };
}

function rOf(der: Buffer): bigint {
  const length = der[3];
  return BigInt(`0x${der.subarray(4, 4 + length).toString('hex')}`);
}

describe('ECDSA with precomputed nonces', () => {
  for (const [curve, hash] of [['P-384', 'sha384'], ['P-256', 'sha256']] as const) {
    it(`${curve}: signatures from precomputed nonces verify with OpenSSL, and a nonce is never used twice`, () => {
      for (let i = 0; i < 20; i++) {
        const m = material(curve);
        registerPresigned(m);
        const message = createHash('sha256').update(String(i)).digest();
        const first = new MessageSigner(hash, m.privateKey);
        first.update(message.subarray(0, 10));
        first.update(message.subarray(10));
        const signature = first.sign();
        assert.equal(rOf(signature), m.r);
        assert.ok(verify(hash, message, { key: m.privateKey, dsaEncoding: 'der' }, signature));
        // Same key again (a caching CMM reusing materials): OpenSSL signs with its own nonce.
        const second = new MessageSigner(hash, m.privateKey);
        second.update(message);
        const again = second.sign();
        assert.notEqual(rOf(again), m.r);
        assert.ok(verify(hash, message, { key: m.privateKey, dsaEncoding: 'der' }, again));
      }
    });
  }

  it('the background pool hands out distinct, consistent key pairs', async () => {
    let entry: PresignMaterial | undefined;
    for (let i = 0; i < 200 && !entry; i++) {
      entry = takePresignMaterial('P-384');
      if (!entry) await sleep(25);
    }
    assert.ok(entry, 'the pool produced nothing');
    const seen = new Set<string>();
    for (let i = 0; i < 5 && entry; i++, entry = takePresignMaterial('P-384')) {
      assert.ok(!seen.has(entry.publicKeyBase64));
      seen.add(entry.publicKeyBase64);
      const publicKey = verificationKeyFromContext(getAlgorithmSuite(0x0578), entry.publicKeyBase64);
      registerPresigned(entry);
      const signer = new MessageSigner('sha384', entry.privateKey);
      signer.update(Buffer.from('pool'));
      assert.ok(verify('sha384', Buffer.from('pool'), { key: publicKey, dsaEncoding: 'der' }, signer.sign()));
    }
  });

  it('keeps supplying a caller that never lets the event loop turn (a loop awaiting only promises)', () => {
    // Synchronous on purpose: no event is delivered during this loop, so every entry after the
    // first few must come through the pool's synchronous drain.
    const deadline = Date.now() + 20_000;
    let received = 0;
    while (received < 40 && Date.now() < deadline) {
      if (takePresignMaterial('P-384')) received++;
    }
    assert.equal(received, 40);
  });

  it('reads the public key from the context only as a canonical base64 compressed point on the curve', () => {
    const suite = getAlgorithmSuite(0x0578);
    const notOnCurve = Buffer.concat([Buffer.from([2]), Buffer.alloc(48, 0xff)]).toString('base64');
    for (const value of [notOnCurve, Buffer.alloc(49, 0).toString('base64'), 'AAAA', Buffer.alloc(97, 4).toString('base64')]) {
      assert.throws(() => verificationKeyFromContext(suite, value), { code: 'MalformedMessage' });
    }
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const jwk = publicKey.export({ format: 'jwk' });
    const y = Buffer.from(jwk.y!, 'base64url');
    const compressed = Buffer.concat([Buffer.from([2 | (y[47] & 1)]), Buffer.from(jwk.x!, 'base64url')]).toString('base64');
    assert.deepEqual(verificationKeyFromContext(suite, compressed).export({ format: 'jwk' }), jwk);
  });
});
