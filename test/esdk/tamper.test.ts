import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EsdkError, decrypt, decryptStream, encrypt, type MessageHeaderInfo } from '../../src/esdk/index.ts';
import { AES_KEY, aesKeyring, collect, policyFor } from './support/fixtures.ts';

/**
 * Every byte of a message is covered: the header by its tag (and the EDKs by the keyring), each
 * frame by its own tag, frame order by the sequence numbers in the AAD, the whole by the signature.
 * So flipping any single bit, truncating anywhere or appending anything must fail the decrypt.
 */
const SECRET = 'SECRET-PLAINTEXT-';
const CONTEXT_VALUE = 'context-value-must-not-leak';
const plaintext = Buffer.from(SECRET.repeat(15)); // 255 bytes: frames of 100, 100 and a final 55

function region(index: number, header: { length: number }, bodyEnd: number): string {
  if (index < header.length) return 'header';
  if (index < bodyEnd) return 'body';
  return 'footer';
}

function assertNoLeak(error: unknown): void {
  assert.ok(error instanceof EsdkError, `expected an EsdkError, got ${String(error)}`);
  assert.ok(!error.message.includes(SECRET) && !error.message.includes(CONTEXT_VALUE) && !error.message.includes(AES_KEY.toString('hex')));
}

async function message(suiteId: number, contentType: 'framed' | 'non-framed'): Promise<{ ciphertext: Buffer; header: MessageHeaderInfo; headerLength: number; bodyEnd: number }> {
  const { ciphertext, header } = await encrypt(plaintext, {
    keyring: aesKeyring,
    suiteId,
    commitmentPolicy: policyFor(suiteId),
    encryptionContext: { purpose: CONTEXT_VALUE },
    contentType,
    ...(contentType === 'framed' ? { frameLength: 100 } : {}),
  });
  // The body has a fixed size for this plaintext; the footer (signing suites) ends the message.
  const bodyLength = contentType === 'framed' ? 2 * (4 + 12 + 100 + 16) + (4 + 4 + 12 + 4 + 55 + 16) : 12 + 8 + 255 + 16;
  const signed = suiteId === 0x0214 || suiteId === 0x0346 || suiteId === 0x0378 || suiteId === 0x0578;
  const bodyEnd = signed ? findFooter(ciphertext) : ciphertext.length;
  return { ciphertext, header, headerLength: bodyEnd - bodyLength, bodyEnd };
}

/** Offset of the footer's length field: the footer is uint16 length ‖ signature and ends the message. */
function findFooter(ciphertext: Buffer): number {
  for (let length = 60; length <= 110; length++) {
    const at = ciphertext.length - 2 - length;
    if (ciphertext.readUInt16BE(at) === length) return at;
  }
  throw new Error('no footer');
}

const CASES: [number, 'framed' | 'non-framed'][] = [
  [0x0578, 'framed'],
  [0x0478, 'framed'],
  [0x0378, 'framed'],
  [0x0214, 'framed'],
  [0x0014, 'framed'],
  [0x0178, 'non-framed'],
  [0x0578, 'non-framed'],
];

describe('tampering anywhere is detected', () => {
  for (const [suiteId, contentType] of CASES) {
    it(`suite 0x${suiteId.toString(16).padStart(4, '0')} ${contentType}: every flipped byte, truncation and extension fails (buffered and streaming)`, async () => {
      const { ciphertext, headerLength, bodyEnd } = await message(suiteId, contentType);
      assert.deepEqual((await decrypt(ciphertext, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext, plaintext);
      const regions = new Set<string>();
      for (let index = 0; index < ciphertext.length; index++) {
        const tampered = Buffer.from(ciphertext);
        tampered[index] ^= index % 2 ? 0x01 : 0x80;
        const where = region(index, { length: headerLength }, bodyEnd);
        regions.add(where);
        await assert.rejects(decrypt(tampered, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), (error) => {
          assertNoLeak(error);
          return true;
        }, `flip at ${index} (${where}) went undetected`);
        if (index % 7 === 0) {
          await assert.rejects(collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), [tampered]), EsdkError, `streaming: flip at ${index} (${where})`);
        }
      }
      assert.ok(regions.has('header') && regions.has('body'));
      for (let cut = 0; cut < ciphertext.length; cut += 3) {
        await assert.rejects(decrypt(ciphertext.subarray(0, cut), { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), { code: 'MalformedMessage' });
        await assert.rejects(collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), [ciphertext.subarray(0, cut)]), { code: 'MalformedMessage' });
      }
      const extended = Buffer.concat([ciphertext, Buffer.from([0])]);
      await assert.rejects(decrypt(extended, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), { code: 'MalformedMessage' });
      await assert.rejects(collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), [extended]), { code: 'MalformedMessage' });
    });
  }

  it('names the failure: header tag, frame tag, reordered frames, signature, commitment', async () => {
    const { ciphertext, headerLength, bodyEnd } = await message(0x0578, 'framed');
    const options = { keyring: aesKeyring };
    const flip = (index: number): Buffer => {
      const copy = Buffer.from(ciphertext);
      copy[index] ^= 1;
      return copy;
    };
    await assert.rejects(decrypt(flip(headerLength - 1), options), { code: 'AuthenticationFailed', message: /header/ }); // header tag
    await assert.rejects(decrypt(flip(headerLength + 4 + 12 + 3), options), { code: 'AuthenticationFailed', message: /frame 1/ });
    await assert.rejects(decrypt(flip(headerLength + 132 + 4 + 12 + 3), options), { code: 'AuthenticationFailed', message: /frame 2/ });
    await assert.rejects(decrypt(flip(bodyEnd + 10), options), { code: 'SignatureInvalid' });
    // Frame 2 moved into frame 1's place: its sequence number no longer matches.
    const swapped = Buffer.from(ciphertext);
    ciphertext.copy(swapped, headerLength, headerLength + 132, headerLength + 264);
    ciphertext.copy(swapped, headerLength + 132, headerLength, headerLength + 132);
    await assert.rejects(decrypt(swapped, options), { code: 'MalformedMessage' });
    // Suite data (the commitment key) is the 32 bytes before the 16-byte header tag in v2.
    await assert.rejects(decrypt(flip(headerLength - 16 - 5), options), { code: 'CommitmentMismatch' });
  });
});
