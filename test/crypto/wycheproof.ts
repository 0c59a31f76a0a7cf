import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AsymmetricKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { verify } from '../../src/crypto/asymmetric/signatures.ts';
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

/** A case of a signature file: a message and a signature over it. */
export type SignatureVector = WycheproofVector & { msg: string; sig: string };

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

/**
 * Loads `fileName`, asserts its algorithm, and hands every group to `checkGroup`, which returns the
 * check for each of the group's cases; the checks push what went wrong onto `failures`. Then
 * asserts that nothing failed and that every case of the file was checked. Returns the file.
 */
export function checkEveryCase<Group extends { tests: unknown[] }>(
  fileName: string,
  algorithm: string,
  checkGroup: (group: Group, failures: string[]) => (vector: Group['tests'][number]) => void,
): WycheproofFile<Group> {
  const file = loadWycheproof<Group>(fileName);
  assert.equal(file.algorithm, algorithm);
  const failures: string[] = [];
  let checked = 0;
  for (const group of file.testGroups) {
    const checkCase = checkGroup(group, failures);
    for (const vector of group.tests) {
      checked++;
      checkCase(vector);
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(checked, file.numberOfTests);
  return file;
}

export interface BothPaths {
  raw: Outcome;
  viaDigest: Outcome;
}

/**
 * Verifies a case twice: messageType RAW over msg, and DIGEST over the `sha` of msg computed here.
 */
export function verifyBothPaths(
  spec: AsymmetricKeySpec,
  algorithm: SigningAlgorithm,
  publicKey: Uint8Array,
  sha: string,
  vector: SignatureVector,
): BothPaths {
  const msg = hex(vector.msg);
  const signature = hex(vector.sig);
  return {
    raw: outcomeOf(() => verify({ spec, algorithm, publicKey, message: msg, messageType: 'RAW', signature })),
    viaDigest: outcomeOf(() =>
      verify({ spec, algorithm, publicKey, message: digest(sha, msg), messageType: 'DIGEST', signature }),
    ),
  };
}

/** Pushes `${where}: RAW …` and/or `${where}: DIGEST …` for each path whose outcome is not `expected`. */
export function pushPathMismatches(failures: string[], where: string, expected: Outcome, { raw, viaDigest }: BothPaths): void {
  if (raw !== expected) {
    failures.push(`${where}: RAW ${raw}`);
  }
  if (viaDigest !== expected) {
    failures.push(`${where}: DIGEST ${viaDigest}`);
  }
}
