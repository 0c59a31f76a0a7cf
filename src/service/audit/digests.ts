import { sign, verify, type KeyObject } from 'node:crypto';
import { ZERO_HASH, sha256 } from '../../crypto/audit-chain.ts';
import type { DigestRequest, DigestSealer } from '../../storage/audit-types.ts';

/**
 * Digests (docs/audit.md "Digests"): compact JSON in a fixed field order, signed with Ed25519 over
 * the text's UTF-8 bytes.
 */

export interface Digest {
  digestVersion: 1;
  seq: number;
  lastSeq: number;
  lastHash: string;
  eventCount: number;
  time: string;
  previousDigestHash: string;
  publicKeyId: string;
}

/** The digest text for a request; the field order is the format's. */
export function digestText(request: DigestRequest, publicKeyId: string): string {
  const digest: Digest = {
    digestVersion: 1,
    seq: request.seq,
    lastSeq: request.lastSeq,
    lastHash: request.lastHash.toString('hex'),
    eventCount: request.eventCount,
    time: request.time.toISOString(),
    previousDigestHash: previousDigestHash(request.previousText).toString('hex'),
    publicKeyId,
  };
  return JSON.stringify(digest);
}

/** SHA-256 of the previous digest's text; 32 zero bytes before the first. */
export function previousDigestHash(previousText: string | undefined): Buffer {
  return previousText === undefined ? ZERO_HASH : sha256(Buffer.from(previousText, 'utf8'));
}

/** The store's digest callback: builds the text and signs it. */
export function digestSealer(signingKey: { privateKey: KeyObject; publicKeyId: string }): DigestSealer {
  return (request) => {
    const text = digestText(request, signingKey.publicKeyId);
    return { text, signature: sign(null, Buffer.from(text, 'utf8'), signingKey.privateKey) };
  };
}

export function verifyDigestSignature(text: string, signature: Uint8Array, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, signature);
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** Parses a digest text; undefined unless every field has the format's type. */
export function parseDigest(text: string): Digest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const digest = value as Record<string, unknown>;
  const ok =
    digest.digestVersion === 1 &&
    isCount(digest.seq) &&
    isCount(digest.lastSeq) &&
    isCount(digest.eventCount) &&
    typeof digest.lastHash === 'string' &&
    HEX64.test(digest.lastHash) &&
    typeof digest.previousDigestHash === 'string' &&
    HEX64.test(digest.previousDigestHash) &&
    typeof digest.publicKeyId === 'string' &&
    HEX64.test(digest.publicKeyId) &&
    typeof digest.time === 'string';
  return ok ? (digest as unknown as Digest) : undefined;
}
