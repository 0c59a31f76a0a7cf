/**
 * The synchronous crypto path of inline members (`--inline-calls`): Pkcs11Token.trySession,
 * LocalHsmMember.encryptNow/decryptNow, the cluster trying them before the asynchronous call, and
 * what the cluster's key store caches per key version (ReferenceDecoder, the header from the
 * CKA_ID). Every shortcut must behave as the path it shortens: same bytes, same errors, same
 * failover, and never a call run when it would have had to wait.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HSM_HEADER_LENGTH, HSM_IV_LENGTH, HSM_IV_OFFSET, newHsmHeader, newHsmHeaderForObject } from '../../src/keystores/pkcs11/ciphertext.ts';
import { HsmCluster, type HsmAuditEvent } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { NOT_NOW } from '../../src/keystores/pkcs11/cluster/member.ts';
import { Pkcs11Error, call } from '../../src/keystores/pkcs11/errors.ts';
import { NO_SESSION_FREE, Pkcs11Token } from '../../src/keystores/pkcs11/module.ts';
import { SessionPool } from '../../src/keystores/pkcs11/session-pool.ts';
import { ReferenceDecoder, decodeReference, encodeReference, newObjectId } from '../../src/keystores/pkcs11/reference.ts';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from './softhsm.ts';

const hsm = SoftHsm.get();
const single = hsm.createToken('fast-single');
const memberTokens = [hsm.createToken('fast-a'), hsm.createToken('fast-b')];

const member = (token: TestToken, inlineCalls: boolean, sessions = 2): LocalHsmMember =>
  new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions, inlineCalls });

after(() => hsm.cleanup());

describe('Pkcs11Token.trySession', () => {
  test('runs on a free session and returns the value itself, not a promise', async () => {
    const token = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: single.label, pin: Buffer.from(single.pin), sessions: 1 });
    try {
      const value = token.trySession((session) => token.api.C_GenerateRandom(session, Buffer.alloc(8)));
      assert.ok(Buffer.isBuffer(value));
      assert.equal(value.length, 8);
      assert.equal(token.stats.inUse, 0, 'the session went back to the pool');
    } finally {
      await token.close();
    }
  });

  test('every session taken: NO_SESSION_FREE without running fn; the waiting caller is served first', async () => {
    const token = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: single.label, pin: Buffer.from(single.pin), sessions: 1 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const holding = token.withSession(() => gate);
      await new Promise((resolve) => setImmediate(resolve));
      let ran = false;
      assert.equal(
        token.trySession(() => (ran = true)),
        NO_SESSION_FREE,
      );
      assert.equal(ran, false);
      // A caller queued in withSession comes before any trySession, even once a session is back.
      const queued = token.withSession(() => 'queued');
      release();
      await holding;
      assert.equal(await queued, 'queued');
      assert.equal(
        token.trySession(() => 'now'),
        'now',
      );
    } finally {
      await token.close();
    }
  });

  test('a session gone under fn: NO_SESSION_FREE (the caller goes the waiting way), the session discarded, handles invalidated', async () => {
    const token = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: single.label, pin: Buffer.from(single.pin), sessions: 2 });
    try {
      const epoch = token.handleEpoch;
      const answer = token.trySession((session) => {
        token.api.C_CloseSession(session);
        return call('C_GenerateRandom', () => token.api.C_GenerateRandom(session, Buffer.alloc(4))); // SESSION_INVALID
      });
      assert.equal(answer, NO_SESSION_FREE);
      assert.ok(token.handleEpoch > epoch);
      assert.equal(token.stats.discarded, 1);
      assert.equal((await token.withSession((session) => token.api.C_GenerateRandom(session, Buffer.alloc(4)))).length, 4);
    } finally {
      await token.close();
    }
  });

  test("fn's own error is thrown as it is, and the session stays usable", async () => {
    const token = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: single.label, pin: Buffer.from(single.pin), sessions: 1 });
    try {
      assert.throws(
        () =>
          token.trySession(() => {
            throw new CryptoError('decryption failed');
          }),
        CryptoError,
      );
      assert.equal(token.stats.discarded, 0);
      assert.equal(
        token.trySession(() => 'again'),
        'again',
      );
    } finally {
      await token.close();
    }
  });
});

describe('SessionPool.tryAcquire', () => {
  test('lends only an idle session: opening one (a login that may fail and count against the PIN) is left to acquire', async () => {
    let opens = 0;
    const pool = new SessionPool({
      size: 2,
      acquireTimeoutMs: 1_000,
      open: () => {
        opens++;
        throw new Pkcs11Error('PIN_INCORRECT', 'PKCS#11 login failed: incorrect PIN');
      },
      close: () => {},
    });
    assert.equal(pool.tryAcquire(), undefined);
    assert.equal(opens, 0, 'tryAcquire opened nothing');
    await assert.rejects(pool.acquire(), (error: unknown) => error instanceof Pkcs11Error && error.code === 'PIN_INCORRECT');
    assert.equal(opens, 1, 'one login attempt for the request');
  });
});

describe('LocalHsmMember.encryptNow / decryptNow', () => {
  const soPins = new Map(memberTokens.map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))]));
  const events: HsmAuditEvent[] = [];
  let cluster: HsmCluster;
  let members: LocalHsmMember[];
  const iv = Buffer.alloc(12, 7);
  const aad = Buffer.from('header and context');

  test('set up: a cluster of two inline members', async () => {
    members = memberTokens.map((token) => member(token, true));
    cluster = await HsmCluster.initialise({ clusterId: `fast-${randomUuid()}`, members, audit: (event) => events.push(event) }, soPins);
  });

  test('what encryptNow seals, decrypt opens, and the other way round; a failed tag is CryptoError', async () => {
    const objectId = await cluster.createKey(randomUuid(), 1);
    const [first] = members;
    const sealed = first!.encryptNow(objectId, iv, aad, Buffer.from('plaintext'));
    assert.ok(Buffer.isBuffer(sealed));
    assert.equal((await first!.decrypt(objectId, iv, aad, sealed)).toString(), 'plaintext');
    const viaAsync = await first!.encrypt(objectId, iv, aad, Buffer.from('plaintext'));
    assert.deepEqual(viaAsync, sealed, 'same key, IV, AAD and plaintext: same bytes');
    assert.equal((first!.decryptNow(objectId, iv, aad, viaAsync) as Buffer).toString(), 'plaintext');
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    assert.throws(() => first!.decryptNow(objectId, iv, aad, tampered), CryptoError);
    assert.throws(() => first!.decryptNow(objectId, iv, aad, Buffer.alloc(15)), CryptoError);
    assert.equal((first!.encryptNow(objectId, iv, aad, Buffer.alloc(0)) as Buffer).length, 16, 'empty plaintext: the tag alone');
  });

  test('a member not calling inline, or not connected, answers NOT_NOW and does nothing', async () => {
    const objectId = await cluster.createKey(randomUuid(), 1);
    const pooled = member(memberTokens[0]!, false);
    assert.equal(pooled.encryptNow(objectId, iv, aad, Buffer.from('x')), NOT_NOW, 'before connect');
    await pooled.connect();
    try {
      assert.equal(pooled.encryptNow(objectId, iv, aad, Buffer.from('x')), NOT_NOW, 'libuv pool member');
      assert.equal(pooled.decryptNow(objectId, iv, aad, Buffer.alloc(32)), NOT_NOW);
      assert.equal((await pooled.encrypt(objectId, iv, aad, Buffer.from('x'))).length, 17);
    } finally {
      await pooled.close();
    }
  });

  test('the cluster fails over on the synchronous path as on the other: a member without the object, then the next', async () => {
    const objectId = await cluster.createKey(randomUuid(), 1);
    assert.equal(await members[0]!.destroy(objectId), true);
    events.length = 0;
    for (let i = 0; i < 4; i++) {
      const sealed = await cluster.encrypt(objectId, iv, aad, Buffer.from(`message ${i}`), { requestId: `r${i}`, operation: 'Encrypt' });
      assert.equal((await cluster.decrypt(objectId, iv, aad, sealed)).toString(), `message ${i}`);
    }
    const encrypts = events.filter((event) => event.operation === 'encrypt');
    assert.ok(encrypts.some((event) => event.member === 'fast-a' && event.errorCode === 'KEY_NOT_FOUND'));
    assert.ok(encrypts.filter((event) => event.outcome === 'ok').every((event) => event.member === 'fast-b'));
    assert.equal(encrypts.filter((event) => event.outcome === 'ok').length, 4);
    assert.equal(encrypts.find((event) => event.outcome === 'ok')?.objectId, objectId.toString('hex'));
  });

  test('a failed tag through the cluster is the caller\'s error: no retry, both members stay in', async () => {
    const objectId = await cluster.createKey(randomUuid(), 1);
    const sealed = await cluster.encrypt(objectId, iv, aad, Buffer.from('secret'));
    events.length = 0;
    await assert.rejects(cluster.decrypt(objectId, iv, Buffer.from('another context'), sealed), CryptoError);
    assert.deepEqual(
      events.map((event) => event.errorCode),
      ['INVALID_CIPHERTEXT'],
    );
    assert.deepEqual(
      cluster.status().members.map((status) => status.state),
      ['ACTIVE', 'ACTIVE'],
    );
  });

  test('tear down', async () => {
    await cluster.close();
  });
});

describe('HsmClusterKeyStore: what it keeps per key version', () => {
  test('ReferenceDecoder reuses the object id while the reference is the same bytes, and checks a changed one', () => {
    const decoder = new ReferenceDecoder(2);
    const keyId = randomUuid();
    const reference = encodeReference(newObjectId(keyId, 3));
    const first = decoder.objectId(reference, keyId, 3);
    assert.deepEqual(first, decodeReference(reference, keyId, 3));
    assert.equal(decoder.objectId(Buffer.from(reference), keyId, 3), first, 'same bytes, another buffer: the remembered id');
    // Another object of the same version (a rotation race's loser, say): decoded afresh.
    const other = encodeReference(newObjectId(keyId, 3));
    assert.deepEqual(decoder.objectId(other, keyId, 3), other.subarray(6));
    // A reference bound to another version is refused, as decodeReference does, cached or not.
    assert.throws(() => decoder.objectId(encodeReference(newObjectId(keyId, 4)), keyId, 3), (error: unknown) => error instanceof Pkcs11Error && error.code === 'REFERENCE_INVALID');
    const damaged = Buffer.from(other);
    damaged[0] = 0;
    assert.throws(() => decoder.objectId(damaged, keyId, 3), (error: unknown) => error instanceof Pkcs11Error && error.code === 'REFERENCE_INVALID');
    // Bounded: two entries; a third key version pushes the oldest out, and it is decoded again.
    const keyB = randomUuid();
    const keyC = randomUuid();
    decoder.objectId(encodeReference(newObjectId(keyB, 1)), keyB, 1);
    decoder.objectId(encodeReference(newObjectId(keyC, 1)), keyC, 1);
    assert.notEqual(decoder.objectId(other, keyId, 3), first);
  });

  test("the header built from the CKA_ID is newHsmHeader's, byte for byte but the IV", () => {
    const keyId = randomUuid();
    const objectId = newObjectId(keyId, 42);
    const context = { purpose: 'test', tenant: 'ü' };
    const fromObject = newHsmHeaderForObject(objectId, context);
    const fromKey = newHsmHeader(keyId, 42, context);
    const withoutIv = (aad: Buffer): Buffer => Buffer.concat([aad.subarray(0, HSM_IV_OFFSET), aad.subarray(HSM_IV_OFFSET + HSM_IV_LENGTH)]);
    assert.deepEqual(withoutIv(fromObject.aad), withoutIv(fromKey.aad));
    assert.equal(fromObject.header.length, HSM_HEADER_LENGTH);
    assert.notDeepEqual(fromObject.aad.subarray(HSM_IV_OFFSET, HSM_HEADER_LENGTH), fromKey.aad.subarray(HSM_IV_OFFSET, HSM_HEADER_LENGTH));
    assert.throws(() => newHsmHeaderForObject(Buffer.alloc(28), context), CryptoError, 'version 0 is no version');
  });
});
