/**
 * The root key in an HSM (`strongroom init --root-key pkcs11:...`): a real SoftHSMv2 token, real
 * `strongroom` processes, the AWS SDK, and opensc's pkcs11-tool as the independent witness that the
 * key is in the token and can never leave it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from '../keystores/softhsm.ts';
import { STRONGROOM_BIN, startServer } from '../support/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-root-hsm-'));
const dataDir = join(dir, 'data');
let token: TestToken;
let pinFile: string;

const strongroom = (args: string[]) =>
  spawnSync(process.execPath, [STRONGROOM_BIN, ...args], { encoding: 'utf8', env: process.env, timeout: 60_000 });
const uri = (object: string, pin = pinFile) =>
  `pkcs11:token=${token.label};object=${object}?module-path=${SOFTHSM_MODULE}&pin-source=file:${pin}`;

describe('root key in an HSM', { timeout: 120_000 }, () => {
  before(() => {
    token = SoftHsm.get().createToken('root-e2e');
    pinFile = join(dir, 'pin');
    writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init refuses a malformed URI (exit 2) and a wrong PIN (exit 1, the PIN never printed)', () => {
    const malformed = strongroom(['init', '--data-dir', dataDir, '--root-key', 'pkcs11:object=x']);
    assert.equal(malformed.status, 2);
    assert.match(malformed.stderr, /token=<label>/);
    const wrongPin = join(dir, 'wrong-pin');
    writeFileSync(wrongPin, 'not-the-pin-4711', { mode: 0o600 });
    const refused = strongroom(['init', '--data-dir', dataDir, '--root-key', uri('strongroom-root', wrongPin)]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /PIN/);
    assert.equal(refused.stderr.includes('not-the-pin-4711'), false);
    assert.equal(existsSync(join(dataDir, 'root-key.json')), false);
  });

  it('init generates a non-extractable AES-256 key in the token and points the data directory at it', () => {
    const result = strongroom(['init', '--data-dir', dataDir, '--root-key', uri('strongroom-root')]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /generated the root key "strongroom-root"/);
    assert.equal(statSync(join(dataDir, 'root-key.json')).mode & 0o777, 0o600);
    const key = listObjects(token).find((object) => object.label === 'strongroom-root');
    assert.ok(key, 'pkcs11-tool sees the key');
    assert.match(key.kind, /Secret Key Object; AES length 32/);
    assert.ok(key.access.includes('sensitive') && key.access.includes('never extractable'), key.access.join(', '));
    const again = strongroom(['init', '--data-dir', dataDir, '--root-key', uri('strongroom-root')]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already initialised/);
  });

  it('serve seals everything with it: keys made before a restart decrypt after; no root.key file ever appears', async () => {
    let server = await startServer({ dataDir });
    const plaintext = Buffer.from('sealed by the HSM');
    let kms = server.kms();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
    await server.stop();
    server = await startServer({ dataDir });
    kms = server.kms();
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob }));
    assert.deepEqual(Buffer.from(decrypted.Plaintext!), plaintext);
    await server.stop();
    assert.equal(existsSync(join(dataDir, 'root.key')), false);
    // The audit signing key is sealed under the HSM root key too: verify finds it there.
    const verified = strongroom(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(verified.status, 0, verified.stderr + verified.stdout);
  });

  it('the HSM sealer binds each blob to its record and refuses other formats', async () => {
    const { Pkcs11RootKey } = await import('../../src/keystores/pkcs11/root-key.ts');
    const { Sealer } = await import('../../src/crypto/seal.ts');
    const { SecretBytes } = await import('../../src/crypto/secret-bytes.ts');
    const backend = await Pkcs11RootKey.open({ modulePath: SOFTHSM_MODULE, tokenLabel: token.label, objectLabel: 'strongroom-root', pin: Buffer.from(token.pin) });
    try {
      const sealer = new Sealer(backend);
      const secret = Buffer.from('0123456789abcdef0123456789abcdef');
      const sealed = sealer.seal(secret, 'key-version:a:1');
      assert.equal(sealed[0], 0x02);
      assert.equal(sealed.includes(secret), false);
      assert.deepEqual(sealer.unseal(sealed, 'key-version:a:1').exposeSecretBytes(), secret);
      assert.throws(() => sealer.unseal(sealed, 'key-version:a:2'), /unseal failed/);
      const tampered = Buffer.from(sealed);
      tampered[tampered.length - 1] ^= 1;
      assert.throws(() => sealer.unseal(tampered, 'key-version:a:1'), /unseal failed/);
      const fileSealed = new Sealer(SecretBytes.random(32)).seal(secret, 'key-version:a:1');
      assert.throws(() => sealer.unseal(fileSealed, 'key-version:a:1'), /unseal failed/);
    } finally {
      await backend.close();
    }
  });

  it('serve refuses to start when the PIN file is readable by others', async () => {
    const { chmodSync } = await import('node:fs');
    chmodSync(pinFile, 0o644);
    try {
      await assert.rejects(startServer({ dataDir, timeoutMs: 20_000 }), /readable by other users/);
    } finally {
      chmodSync(pinFile, 0o600);
    }
  });
});
