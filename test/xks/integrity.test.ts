import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ciphertextDataIntegrityValue, gcmAad } from '../../src/crypto/xks-integrity.ts';
import {
  MAX_PLAINTEXT_BYTES,
  decodeStrictBase64,
  readDecryptRequest,
  readEncryptRequest,
  readRequestMetadata,
} from '../../src/transports/xks-proxy/wire.ts';
import { XksError } from '../../src/transports/xks-proxy/errors.ts';

const vector = JSON.parse(readFileSync(new URL('./vectors/appendix-c.json', import.meta.url), 'utf8')) as Record<string, string>;
const b64 = (text: string): Buffer => Buffer.from(text, 'base64');

describe('ciphertextDataIntegrityValue', () => {
  it('matches the XKS spec Appendix C worked example byte for byte', () => {
    const value = ciphertextDataIntegrityValue({
      additionalAuthenticatedData: Buffer.from(vector.additionalAuthenticatedData, 'utf8'),
      ciphertextMetadata: Buffer.from(vector.ciphertextMetadata, 'utf8'),
      initializationVector: b64(vector.initializationVector),
      ciphertext: b64(vector.ciphertext),
      authenticationTag: b64(vector.authenticationTag),
    });
    assert.equal(value.toString('base64'), vector.ciphertextDataIntegrityValue);
  });

  it('changes when any one of its five inputs changes', () => {
    const parts = {
      additionalAuthenticatedData: Buffer.from(vector.additionalAuthenticatedData, 'utf8'),
      ciphertextMetadata: Buffer.from(vector.ciphertextMetadata, 'utf8'),
      initializationVector: b64(vector.initializationVector),
      ciphertext: b64(vector.ciphertext),
      authenticationTag: b64(vector.authenticationTag),
    };
    for (const field of Object.keys(parts) as (keyof typeof parts)[]) {
      const altered = Buffer.from(parts[field]);
      altered[0] ^= 1;
      const value = ciphertextDataIntegrityValue({ ...parts, [field]: altered });
      assert.notEqual(value.toString('base64'), vector.ciphertextDataIntegrityValue, field);
    }
  });
});

describe('the AAD fed to AES-GCM', () => {
  it('is uint16 AAD length, AAD, uint8 metadata length, metadata', () => {
    const aad = gcmAad(Buffer.from('project=nile'), Buffer.from('key_version=1'));
    assert.deepEqual(aad, Buffer.concat([Buffer.from([0, 12]), Buffer.from('project=nile'), Buffer.from([13]), Buffer.from('key_version=1')]));
  });

  it('counts absent fields as length zero', () => {
    assert.deepEqual(gcmAad(Buffer.alloc(0), Buffer.alloc(0)), Buffer.from([0, 0, 0]));
    assert.deepEqual(gcmAad(Buffer.alloc(0), Buffer.from('m')), Buffer.from([0, 0, 1, 0x6d]));
  });

  it('keeps a byte moved between AAD and metadata from authenticating the same bytes', () => {
    assert.notDeepEqual(gcmAad(Buffer.from('ab'), Buffer.from('c')), gcmAad(Buffer.from('a'), Buffer.from('bc')));
  });

  it('takes the largest AAD (8192 bytes) with its length big-endian, and refuses more', () => {
    const aad = gcmAad(Buffer.alloc(8192, 7), Buffer.alloc(20, 1));
    assert.equal(aad.readUInt16BE(0), 8192);
    assert.equal(aad[2 + 8192], 20);
    assert.throws(() => gcmAad(Buffer.alloc(8193), Buffer.alloc(0)), RangeError);
    assert.throws(() => gcmAad(Buffer.alloc(0), Buffer.alloc(21)), RangeError);
  });
});

describe('XKS request parsing', () => {
  const metadata = { awsPrincipalArn: 'arn:aws:iam::111122223333:user/alice', kmsOperation: 'Encrypt', kmsRequestId: 'r-1' };
  const rejects = (run: () => unknown, errorName: string, message?: RegExp) =>
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof XksError);
      assert.equal(error.errorName, errorName);
      if (message) assert.match(error.message, message);
      return true;
    });

  it('decodes canonical base64 only', () => {
    assert.deepEqual(decodeStrictBase64('aGVsbG8='), Buffer.from('hello'));
    assert.deepEqual(decodeStrictBase64(''), Buffer.alloc(0));
    for (const bad of ['aGVsbG8', 'aGVsbG8=!', 'aGVs bG8=', 'aGVsbG9=', 'aGVsbG8==', 'aG==VsbG8', '-_-_']) {
      assert.equal(decodeStrictBase64(bad), undefined, bad);
    }
  });

  const cases: Array<{ title: string; body: Record<string, unknown>; errorName: string; message: RegExp }> = [
    { title: 'no requestMetadata', body: { plaintext: 'AA==', encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /requestMetadata/ },
    { title: 'no kmsRequestId', body: { requestMetadata: { ...metadata, kmsRequestId: undefined }, plaintext: 'AA==', encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /kmsRequestId/ },
    { title: 'no awsPrincipalArn', body: { requestMetadata: { ...metadata, awsPrincipalArn: undefined }, plaintext: 'AA==', encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /awsPrincipalArn/ },
    { title: 'an ARN over 2048 characters', body: { requestMetadata: { ...metadata, kmsKeyArn: 'a'.repeat(2049) }, plaintext: 'AA==', encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /kmsKeyArn/ },
    { title: 'no plaintext', body: { requestMetadata: metadata, encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /plaintext is required/ },
    { title: 'plaintext not base64', body: { requestMetadata: metadata, plaintext: 'not base64!', encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /plaintext is not valid base64/ },
    { title: 'plaintext a number', body: { requestMetadata: metadata, plaintext: 12, encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /plaintext must be/ },
    { title: 'plaintext over 4300 bytes', body: { requestMetadata: metadata, plaintext: Buffer.alloc(MAX_PLAINTEXT_BYTES + 1).toString('base64'), encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /longer than 4300/ },
    { title: 'AAD over 8192 bytes', body: { requestMetadata: metadata, plaintext: 'AA==', additionalAuthenticatedData: Buffer.alloc(8193).toString('base64'), encryptionAlgorithm: 'AES_GCM' }, errorName: 'ValidationException', message: /longer than 8192/ },
    { title: 'no algorithm', body: { requestMetadata: metadata, plaintext: 'AA==' }, errorName: 'ValidationException', message: /encryptionAlgorithm/ },
    { title: 'another algorithm', body: { requestMetadata: metadata, plaintext: 'AA==', encryptionAlgorithm: 'AES_CBC' }, errorName: 'UnsupportedOperationException', message: /AES_GCM/ },
    { title: 'another integrity algorithm', body: { requestMetadata: metadata, plaintext: 'AA==', encryptionAlgorithm: 'AES_GCM', ciphertextDataIntegrityValueAlgorithm: 'MD5' }, errorName: 'UnsupportedOperationException', message: /SHA_256/ },
  ];
  for (const { title, body, errorName, message } of cases) {
    it(`refuses an Encrypt with ${title} (${errorName})`, () => rejects(() => readEncryptRequest(body), errorName, message));
  }

  it('accepts the largest Encrypt the spec allows, and any kmsOperation', () => {
    const request = readEncryptRequest({
      requestMetadata: { ...metadata, kmsOperation: 'SomeFutureOperation', kmsKeyArn: 'a'.repeat(2048), unknownField: 'x' },
      plaintext: Buffer.alloc(MAX_PLAINTEXT_BYTES).toString('base64'),
      additionalAuthenticatedData: Buffer.alloc(8192).toString('base64'),
      encryptionAlgorithm: 'AES_GCM',
      ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
    });
    assert.equal(request.plaintext.length, MAX_PLAINTEXT_BYTES);
    assert.equal(request.additionalAuthenticatedData.length, 8192);
    assert.equal(request.integrityValueRequested, true);
    assert.equal(request.requestMetadata.kmsOperation, 'SomeFutureOperation');
    assert.equal((request.requestMetadata as Record<string, unknown>).unknownField, undefined);
  });

  const decrypt = {
    requestMetadata: metadata,
    encryptionAlgorithm: 'AES_GCM',
    ciphertext: 'AAAA',
    initializationVector: Buffer.alloc(12).toString('base64'),
    authenticationTag: Buffer.alloc(16).toString('base64'),
  };
  const decryptCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an 8-byte IV', { initializationVector: Buffer.alloc(8).toString('base64') }, /initializationVector must be 12 or 16/],
    ['a 12-byte tag', { authenticationTag: Buffer.alloc(12).toString('base64') }, /authenticationTag must be 16/],
    ['21 bytes of ciphertextMetadata', { ciphertextMetadata: Buffer.alloc(21).toString('base64') }, /ciphertextMetadata is longer than 20/],
    ['no IV', { initializationVector: undefined }, /initializationVector is required/],
    ['no tag', { authenticationTag: undefined }, /authenticationTag is required/],
    ['ciphertext over 4300 bytes', { ciphertext: Buffer.alloc(4301).toString('base64') }, /ciphertext is longer than 4300/],
  ];
  for (const [title, change, message] of decryptCases) {
    it(`refuses a Decrypt with ${title}`, () => rejects(() => readDecryptRequest({ ...decrypt, ...change }), 'ValidationException', message));
  }

  it('accepts a 16-byte IV on Decrypt', () => {
    assert.equal(readDecryptRequest({ ...decrypt, initializationVector: Buffer.alloc(16).toString('base64') }).initializationVector.length, 16);
  });

  it('never puts a field value in its error message', () => {
    const secretLooking = 'c2VjcmV0LXBsYWludGV4dA=!';
    rejects(() => readEncryptRequest({ requestMetadata: metadata, plaintext: secretLooking, encryptionAlgorithm: 'AES_GCM' }), 'ValidationException');
    try {
      readRequestMetadata({ requestMetadata: { kmsRequestId: 7 } }, []);
      assert.fail('must throw');
    } catch (error) {
      assert.ok(error instanceof XksError);
      assert.doesNotMatch(error.message, /7/);
    }
  });
});
