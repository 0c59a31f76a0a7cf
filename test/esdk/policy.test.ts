import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decrypt, decryptStream, encrypt, type CommitmentPolicy } from '../../src/esdk/index.ts';
import { SUITES, aesKeyring, collect, policyFor } from './support/fixtures.ts';

const POLICIES: CommitmentPolicy[] = ['FORBID_ENCRYPT_ALLOW_DECRYPT', 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'];
const committing = (suiteId: number): boolean => suiteId === 0x0478 || suiteId === 0x0578;

describe('commitment policies (client-apis/client.md)', () => {
  for (const policy of POLICIES) {
    it(`${policy}: encrypts exactly the suites it allows and decrypts what it should`, async () => {
      for (const suiteId of SUITES) {
        const encryptAllowed = policy === 'FORBID_ENCRYPT_ALLOW_DECRYPT' ? !committing(suiteId) : committing(suiteId);
        const attempt = encrypt(Buffer.from('x'), { keyring: aesKeyring, suiteId, commitmentPolicy: policy });
        if (encryptAllowed) await attempt;
        else await assert.rejects(attempt, { code: 'PolicyViolation' }, `0x${suiteId.toString(16)} under ${policy}`);

        const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring, suiteId, commitmentPolicy: policyFor(suiteId) });
        const decryptAllowed = policy !== 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' || committing(suiteId);
        if (decryptAllowed) {
          assert.equal((await decrypt(ciphertext, { keyring: aesKeyring, commitmentPolicy: policy })).plaintext.toString(), 'x');
        } else {
          await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring, commitmentPolicy: policy }), { code: 'PolicyViolation' });
          await assert.rejects(collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: policy }), [ciphertext]), { code: 'PolicyViolation' });
        }
      }
    });
  }

  it('defaults to REQUIRE_ENCRYPT_REQUIRE_DECRYPT with suite 0x0578, and to 0x0378 under FORBID', async () => {
    assert.equal((await encrypt(Buffer.from('x'), { keyring: aesKeyring })).header.suiteId, 0x0578);
    assert.equal((await encrypt(Buffer.from('x'), { keyring: aesKeyring, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })).header.suiteId, 0x0378);
    const legacy = await encrypt(Buffer.from('x'), { keyring: aesKeyring, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' });
    await assert.rejects(decrypt(legacy.ciphertext, { keyring: aesKeyring }), { code: 'PolicyViolation' });
  });

  it('refuses an unknown policy', async () => {
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: aesKeyring, commitmentPolicy: 'ALLOW_EVERYTHING' as CommitmentPolicy }), { code: 'InvalidArgument' });
  });
});
