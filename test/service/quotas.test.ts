import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseQuotas } from '../../src/cli/serve-settings.ts';
import { isKmsError } from '../../src/service/errors.ts';
import { RequestQuotas, quotaClassOf } from '../../src/service/quotas.ts';
import type { KeyRecord } from '../../src/storage/types.ts';
import { Harness, PLAINTEXT } from '../support/service-harness.ts';

const key = (keySpec: string) => ({ keySpec }) as KeyRecord;
const throttled = (error: unknown) => isKmsError(error) && error.errorName === 'ThrottlingException' && error.message === 'Rate exceeded';

describe('request-rate quotas', () => {
  test('classes as AWS counts them: symmetric (and HMAC, GenerateRandom), RSA, ECC, control plane', () => {
    assert.equal(quotaClassOf('kms:Encrypt', key('SYMMETRIC_DEFAULT')), 'symmetric');
    assert.equal(quotaClassOf('kms:GenerateMac', key('HMAC_256')), 'symmetric');
    assert.equal(quotaClassOf('kms:GenerateRandom', undefined), 'symmetric');
    assert.equal(quotaClassOf('kms:Sign', key('RSA_2048')), 'rsa');
    assert.equal(quotaClassOf('kms:Decrypt', key('RSA_4096')), 'rsa');
    assert.equal(quotaClassOf('kms:Verify', key('ECC_NIST_P256')), 'ecc');
    assert.equal(quotaClassOf('kms:DeriveSharedSecret', key('ECC_NIST_P384')), 'ecc');
    assert.equal(quotaClassOf('kms:Sign', key('ML_DSA_65')), 'ecc');
    assert.equal(quotaClassOf('kms:CreateKey', undefined), 'control');
    assert.equal(quotaClassOf('kms:DescribeKey', key('SYMMETRIC_DEFAULT')), 'control');
  });

  test('a token bucket per class: one second of burst, refilled at the rate, this process holding its share', () => {
    let now = 0;
    const quotas = new RequestQuotas({ symmetric: 10, rsa: 4 }, { share: 0.5, now: () => now });
    for (let i = 0; i < 5; i++) quotas.charge('symmetric', 'kms:Encrypt'); // 10/s × ½
    assert.throws(() => quotas.charge('symmetric', 'kms:Encrypt'), throttled);
    for (let i = 0; i < 2; i++) quotas.charge('rsa', 'kms:Sign');
    assert.throws(() => quotas.charge('rsa', 'kms:Sign'), throttled);
    for (let i = 0; i < 1000; i++) quotas.charge('ecc', 'kms:Sign'); // not limited
    now += 200; // 0.2 s × 5/s = one request
    quotas.charge('symmetric', 'kms:Encrypt');
    assert.throws(() => quotas.charge('symmetric', 'kms:Encrypt'), throttled);
    now += 10_000; // refills to the burst, not beyond
    for (let i = 0; i < 5; i++) quotas.charge('symmetric', 'kms:Encrypt');
    assert.throws(() => quotas.charge('symmetric', 'kms:Encrypt'), throttled);
  });

  test('the control-plane rate is per operation, as AWS counts it: one operation spending its quota leaves the others theirs', () => {
    const quotas = new RequestQuotas({ control: 2 }, { now: () => 0 });
    quotas.charge('control', 'kms:CreateKey');
    quotas.charge('control', 'kms:CreateKey');
    assert.throws(() => quotas.charge('control', 'kms:CreateKey'), throttled);
    quotas.charge('control', 'kms:DescribeKey');
    quotas.charge('control', 'kms:DescribeKey');
    assert.throws(() => quotas.charge('control', 'kms:DescribeKey'), throttled);
  });

  test('each refusal is told to the rejection observer with its class', () => {
    const quotas = new RequestQuotas({ rsa: 1, control: 1 }, { now: () => 0 });
    const seen: string[] = [];
    quotas.rejectionObserver = (quotaClass) => seen.push(quotaClass);
    quotas.charge('rsa', 'kms:Sign');
    assert.throws(() => quotas.charge('rsa', 'kms:Sign'), throttled);
    quotas.charge('control', 'kms:ListKeys');
    assert.throws(() => quotas.charge('control', 'kms:ListKeys'), throttled);
    assert.deepEqual(seen, ['rsa', 'control']);
  });

  test('--quota entries: CLASS=RATE, aws for AWS defaults; anything else is refused', () => {
    assert.deepEqual(parseQuotas(['rsa=50', 'control=2.5']), { rsa: 50, control: 2.5 });
    assert.deepEqual(parseQuotas(['aws', 'ecc=10']), { symmetric: 100_000, rsa: 500, ecc: 10 });
    for (const bad of ['rsa', 'rsa=0', 'disk=5', 'rsa=-1', 'rsa=fast']) assert.throws(() => parseQuotas([bad]), /--quota/);
    assert.throws(() => new RequestQuotas({ rsa: 5 }, { share: 0 }), RangeError);
  });

  test('in the service: past the quota a request is ThrottlingException, before any work; denied requests are not counted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strongroom-quotas-'));
    const h = await Harness.open(dir, { quotas: { limits: { symmetric: 3, control: 2 }, share: 1 } });
    try {
      const keyId = await h.createKey(); // CreateKey's bucket
      await h.call('DescribeKey', { KeyId: keyId }); // DescribeKey's own
      await h.call('DescribeKey', { KeyId: keyId });
      await assert.rejects(h.call('DescribeKey', { KeyId: keyId }), throttled);
      const nobody = await h.addUser('nobody');
      for (let i = 0; i < 5; i++) await h.expectError('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT }, 'AccessDeniedException', nobody);
      for (let i = 0; i < 3; i++) await h.call('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT });
      await assert.rejects(h.call('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT }), throttled);
    } finally {
      await h.instance.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
