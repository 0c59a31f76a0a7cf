/**
 * Grant tokens: opaque strings CreateGrant hands out, each naming one grant.
 *
 * A token is base64url(version byte ‖ 32-byte grant id ‖ 16 random bytes): every CreateGrant
 * answer carries a fresh token, even when Name idempotency returns an existing grant, and all
 * tokens of one grant are interchangeable (API reference, CreateGrant "Name").
 *
 * In AWS a token lets a grantee use a grant before it is known throughout KMS (developer guide,
 * "Using a grant token"). Grants here are strongly consistent — visible to every request the
 * moment CreateGrant returns, and gone the moment RetireGrant/RevokeGrant returns — so a token
 * grants nothing by itself: a well-formed one is accepted and otherwise ignored, and only a
 * malformed one is an error (InvalidGrantTokenException). Only RetireGrant reads the grant id
 * out of a token.
 */
import { randomBytes } from '../crypto/random.ts';
import { KmsError } from './errors.ts';

const VERSION = 1;
const GRANT_ID_BYTES = 32;
const NONCE_BYTES = 16;
const TOKEN_BYTES = 1 + GRANT_ID_BYTES + NONCE_BYTES;
/** base64url of 49 bytes, unpadded. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{66}$/;
const GRANT_ID_SHAPE = /^[0-9a-f]{64}$/;

export function newGrantToken(grantId: string): string {
  if (!GRANT_ID_SHAPE.test(grantId)) throw new Error('grant ids are 64 lowercase hex characters');
  return Buffer.concat([Buffer.of(VERSION), Buffer.from(grantId, 'hex'), randomBytes(NONCE_BYTES)]).toString('base64url');
}

/** The grant a token names, or undefined when the string is not a token we issued the form of. */
export function grantIdOfToken(token: string): string | undefined {
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
  const bytes = Buffer.from(token, 'base64url');
  // The last character carries 4 spare bits: insist on the one canonical spelling.
  if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== token || bytes[0] !== VERSION) return undefined;
  return bytes.subarray(1, 1 + GRANT_ID_BYTES).toString('hex');
}

export const invalidGrantToken = (): KmsError =>
  new KmsError('InvalidGrantTokenException', 'The specified grant token is not valid.');

/**
 * For every operation that takes GrantTokens: rejects a token that is not well-formed. A
 * well-formed token needs nothing more (grants are strongly consistent here; see above); a
 * token of a grant since retired or revoked is well-formed, and lets nothing in.
 */
export function checkGrantTokens(tokens: readonly string[] | undefined): void {
  if (tokens === undefined) return;
  for (const token of tokens) {
    if (grantIdOfToken(token) === undefined) throw invalidGrantToken();
  }
}
