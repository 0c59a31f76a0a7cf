import { KmsError, validationError } from './errors.ts';

/**
 * Markers are opaque to callers: a versioned, base64url wrapper around the store's position.
 * A marker that does not decode is InvalidMarkerException, as in AWS.
 */
export function encodeMarker(position: string): string {
  return Buffer.from(`m1:${position}`, 'utf8').toString('base64url');
}

const invalidMarker = () =>
  new KmsError('InvalidMarkerException', 'The marker that specifies where pagination should next begin is not valid.');

export function decodeMarker(marker: string | undefined): string | undefined {
  if (marker === undefined) return undefined;
  const decoded = /^[A-Za-z0-9_-]+$/.test(marker) ? Buffer.from(marker, 'base64url').toString('utf8') : '';
  if (!decoded.startsWith('m1:')) throw invalidMarker();
  return decoded.slice(3);
}

/** For positions that are sequence numbers: anything but a non-negative integer is not ours. */
export function decodeNumericMarker(marker: string | undefined): number | undefined {
  const position = decodeMarker(marker);
  if (position === undefined) return undefined;
  const value = Number(position);
  if (!/^\d+$/.test(position) || !Number.isSafeInteger(value)) throw invalidMarker();
  return value;
}

/** Applies an operation's own page-size bounds, which are tighter than the model's LimitType. */
export function pageLimit(limit: number | undefined, { defaultLimit, max }: { defaultLimit: number; max: number }): number {
  if (limit === undefined) return defaultLimit;
  if (limit > max) {
    throw validationError([
      `Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to ${max}`,
    ]);
  }
  return limit;
}
