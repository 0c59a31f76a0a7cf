import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CryptoError } from '../../src/crypto/errors.ts';

/**
 * Reading Wycheproof files (test/vectors/wycheproof, Apache-2.0, see LICENSE there) for the
 * wycheproof-*.test.ts files. Not a test file itself.
 */

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

export interface WycheproofVector {
  tcId: number;
  comment: string;
  flags: string[];
  result: WycheproofResult;
}

export interface WycheproofFile<Group> {
  algorithm: string;
  numberOfTests: number;
  testGroups: Group[];
}

export function loadWycheproof<Group>(fileName: string): WycheproofFile<Group> {
  return JSON.parse(
    readFileSync(new URL(`../vectors/wycheproof/${fileName}`, import.meta.url), 'utf8'),
  ) as WycheproofFile<Group>;
}

export const hex = (text: string): Buffer => Buffer.from(text, 'hex');

export function label(vector: WycheproofVector): string {
  return `tcId ${vector.tcId} (${vector.result}; ${vector.flags.join(', ')})`;
}

/** 'SHA-256' → 'sha256'. */
export function nodeHashName(wycheproofName: string): string {
  return wycheproofName.toLowerCase().replace('-', '');
}

export function digest(wycheproofHash: string, message: Uint8Array): Buffer {
  return createHash(nodeHashName(wycheproofHash)).update(message).digest();
}

export type Outcome = 'accepted' | 'rejected' | 'refused';

/**
 * What a verification did: returned true, returned false, or threw CryptoError ("refused": the
 * API judged the request itself invalid, e.g. a malformed public key). Anything else thrown is a
 * bug and propagates.
 */
export function outcomeOf(check: () => boolean): Outcome {
  try {
    return check() ? 'accepted' : 'rejected';
  } catch (error) {
    if (error instanceof CryptoError) {
      return 'refused';
    }
    throw error;
  }
}
