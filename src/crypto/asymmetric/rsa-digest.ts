import { constants, createHash, privateEncrypt, publicDecrypt, randomFillSync, type KeyObject } from 'node:crypto';
import { CryptoError } from '../errors.ts';
import { constantTimeEqual } from '../secret-bytes.ts';

/**
 * RSA signatures over a digest the caller already computed (MessageType DIGEST). node:crypto's
 * sign() always hashes its input, so the encoding step of RFC 8017 is done here and only the RSA
 * primitive (RSASP1 / RSAVP1) is left to OpenSSL, through privateEncrypt / publicDecrypt.
 * OpenSSL's private-key operation uses blinding and checks its CRT result.
 */

export type RsaHash = 'sha256' | 'sha384' | 'sha512';

const HASH_LENGTH: Readonly<Record<RsaHash, number>> = { sha256: 32, sha384: 48, sha512: 64 };

// RFC 8017 §9.2 note 1: the DER of DigestInfo { AlgorithmIdentifier { OID, NULL }, OCTET STRING }
// up to the digest.
const DIGEST_INFO_PREFIX: Readonly<Record<RsaHash, Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

export function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) {
    throw new CryptoError('invalid key');
  }
  return bits;
}

/** RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2.1) of a precomputed digest. */
export function signPkcs1Digest(hash: RsaHash, key: KeyObject, digest: Uint8Array): Buffer {
  // Checked here too, not only by callers: a longer "digest" would be signed as a DigestInfo with
  // trailing bytes, which lenient verifiers accept.
  if (digest.byteLength !== HASH_LENGTH[hash]) throw new CryptoError('invalid digest length');
  const digestInfo = Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
  // RSA_PKCS1_PADDING on a private-key operation is the type-1 (signature) padding: 00 01 FF… 00 T.
  return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo);
}

/**
 * RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of a precomputed digest. As step 3 and 4 of the
 * RFC prescribe, the expected encoding EM' is built and compared whole with the recovered EM, so
 * no parser sees attacker-chosen padding or DigestInfo bytes (the Bleichenbacher-2006 family).
 */
export function verifyPkcs1Digest(hash: RsaHash, key: KeyObject, digest: Uint8Array, signature: Uint8Array): boolean {
  const k = Math.ceil(modulusBits(key) / 8);
  if (signature.byteLength !== k) {
    return false;
  }
  const recovered = rsaVerifyPrimitive(key, signature);
  if (recovered === undefined) {
    return false;
  }
  const digestInfo = Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
  const expected = Buffer.alloc(k, 0xff);
  expected[0] = 0x00;
  expected[1] = 0x01;
  expected[k - digestInfo.length - 1] = 0x00;
  digestInfo.copy(expected, k - digestInfo.length);
  return constantTimeEqual(recovered, expected);
}

/**
 * RSASSA-PSS signature (RFC 8017 §8.1.1, EMSA-PSS-ENCODE §9.1.1) of a precomputed digest, with
 * MGF1 over the same hash and a salt as long as the digest — AWS KMS's parameters.
 */
export function signPssDigest(hash: RsaHash, key: KeyObject, digest: Uint8Array): Buffer {
  const modBits = modulusBits(key);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = HASH_LENGTH[hash];
  const sLen = hLen;
  if (digest.byteLength !== hLen || emLen < hLen + sLen + 2) {
    throw new CryptoError('encoding error');
  }
  const salt = randomFillSync(Buffer.alloc(sLen));
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest(); // H = Hash(M')
  const dbLen = emLen - hLen - 1;
  const db = Buffer.alloc(dbLen); // DB = PS || 0x01 || salt
  db[dbLen - sLen - 1] = 0x01;
  salt.copy(db, dbLen - sLen);
  xorInPlace(db, mgf1(hash, h, dbLen));
  db[0] &= 0xff >> (8 * emLen - emBits);
  // EM = maskedDB || H || 0xbc, left-padded to k bytes: when modBits ≡ 1 (mod 8), emLen = k - 1.
  const em = Buffer.alloc(k);
  db.copy(em, k - emLen);
  h.copy(em, k - emLen + dbLen);
  em[k - 1] = 0xbc;
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, em);
}

/** RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2) of a precomputed digest. */
export function verifyPssDigest(hash: RsaHash, key: KeyObject, digest: Uint8Array, signature: Uint8Array): boolean {
  const modBits = modulusBits(key);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = HASH_LENGTH[hash];
  const sLen = hLen;
  if (signature.byteLength !== k || digest.byteLength !== hLen || emLen < hLen + sLen + 2) {
    return false;
  }
  const m = rsaVerifyPrimitive(key, signature); // RSAVP1; OpenSSL refuses s >= n
  if (m === undefined) {
    return false;
  }
  // §8.1.2 step 2c, I2OSP(m, emLen): the bytes above emLen must be zero.
  for (let i = 0; i < k - emLen; i++) {
    if (m[i] !== 0) {
      return false;
    }
  }
  const em = m.subarray(k - emLen);
  if (em[emLen - 1] !== 0xbc) {
    return false; // §9.1.2 step 4
  }
  const dbLen = emLen - hLen - 1;
  const topMask = 0xff >> (8 * emLen - emBits);
  const db = Buffer.from(em.subarray(0, dbLen));
  const h = em.subarray(dbLen, dbLen + hLen);
  if ((db[0] & ~topMask) !== 0) {
    return false; // step 6
  }
  xorInPlace(db, mgf1(hash, h, dbLen)); // steps 7-8
  db[0] &= topMask; // step 9
  const separator = dbLen - sLen - 1;
  for (let i = 0; i < separator; i++) {
    if (db[i] !== 0) {
      return false; // step 10
    }
  }
  if (db[separator] !== 0x01) {
    return false;
  }
  const salt = db.subarray(dbLen - sLen);
  const expectedH = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return constantTimeEqual(h, expectedH); // step 14
}

function rsaVerifyPrimitive(key: KeyObject, signature: Uint8Array): Buffer | undefined {
  try {
    return publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return undefined;
  }
}

/** MGF1 (RFC 8017 §B.2.1). */
function mgf1(hash: RsaHash, seed: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let produced = 0, i = 0; produced < length; i++) {
    counter.writeUInt32BE(i, 0);
    const block = createHash(hash).update(seed).update(counter).digest();
    blocks.push(block);
    produced += block.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function xorInPlace(target: Buffer, mask: Buffer): void {
  for (let i = 0; i < target.length; i++) {
    target[i] ^= mask[i];
  }
}
