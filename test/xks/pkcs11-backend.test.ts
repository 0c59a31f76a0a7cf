/**
 * The proxy's PKCS#11 side (src/cli/xks-proxy.ts) in-process against a real SoftHSMv2 token:
 * what a healthy, busy and closed token look like to the proxy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pkcs11XksBackend } from '../../src/cli/xks-proxy.ts';
import { Pkcs11Token } from '../../src/keystores/pkcs11/module.ts';
import { HsmFailure } from '../../src/transports/xks-proxy/hsm-backend.ts';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from '../keystores/softhsm.ts';
import { generateAesKey } from './proxy-process.ts';

let token: TestToken;
const open = (sessions = 2, acquireTimeoutMs = 1000) =>
  Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions, acquireTimeoutMs });

async function rejectsWith(promise: Promise<unknown>, kind: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof HsmFailure && error.kind === kind);
}

describe('the PKCS#11 backend of the XKS proxy (SoftHSMv2)', { timeout: 60_000 }, () => {
  before(() => {
    token = SoftHsm.get().createToken('xks-backend');
    generateAesKey(token, 'backend-key');
  });

  describe('on an open token', () => {
    let backend: Pkcs11XksBackend;
    before(async () => {
      backend = new Pkcs11XksBackend(await open(), 'backend-key');
    });
    after(() => backend.close());

    it('describes a generated key and knows an absent label is absent', async () => {
      assert.deepEqual(await backend.describeKey('backend-key'), { aes256: true, canEncrypt: true, canDecrypt: true, canWrap: true, canUnwrap: true });
      assert.equal(await backend.describeKey('no-such-key'), undefined);
    });

    it('splits the GCM tag off the ciphertext and rejects a wrong AAD as an authentication failure', async () => {
      const plaintext = randomBytes(100);
      const sealed = await backend.encrypt('backend-key', plaintext, Buffer.from('aad'));
      assert.equal(sealed.ciphertext.length, 100);
      assert.equal(sealed.authenticationTag.length, 16);
      assert.equal(sealed.initializationVector.length, 12);
      assert.deepEqual(await backend.decrypt('backend-key', sealed, Buffer.from('aad')), plaintext);
      await rejectsWith(backend.decrypt('backend-key', sealed, Buffer.from('aae')), 'AUTHENTICATION_FAILED');
      await rejectsWith(backend.encrypt('no-such-key', plaintext, Buffer.alloc(0)), 'KEY_NOT_FOUND');
    });

    it('reports the token ACTIVE after a round trip through the health key', async () => {
      const health = await backend.health();
      assert.equal(health.vendor, 'SoftHSM project');
      assert.equal(health.members[0].healthStatus, 'ACTIVE');
    });
  });

  it('reports DEGRADED when the health key is missing from the token', async () => {
    const backend = new Pkcs11XksBackend(await open(), 'missing-health-key');
    try {
      assert.equal((await backend.health()).members[0].healthStatus, 'DEGRADED');
    } finally {
      await backend.close();
    }
  });

  it('answers BUSY when no session frees up in time, and DEGRADED health', async () => {
    const opened = await open(1, 50);
    const backend = new Pkcs11XksBackend(opened, 'backend-key');
    try {
      let release!: () => void;
      const held = opened.withSession(() => new Promise<void>((done) => (release = done)));
      await rejectsWith(backend.encrypt('backend-key', randomBytes(8), Buffer.alloc(0)), 'BUSY');
      assert.equal((await backend.health()).members[0].healthStatus, 'DEGRADED');
      release();
      await held;
    } finally {
      await backend.close();
    }
  });

  it('answers UNAVAILABLE, and UNAVAILABLE health, once the token is gone', async () => {
    const opened = await open();
    const backend = new Pkcs11XksBackend(opened, 'backend-key');
    await opened.close();
    await rejectsWith(backend.encrypt('backend-key', randomBytes(8), Buffer.alloc(0)), 'UNAVAILABLE');
    const health = await backend.health();
    assert.deepEqual(health.members[0], { id: 'unknown', model: 'unknown', healthStatus: 'UNAVAILABLE' });
  });
});
