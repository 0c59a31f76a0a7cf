import * as nodeCrypto from 'node:crypto';
import { KmsError } from '../../service/errors.ts';

/**
 * The canonical-request pieces of SigV4 (AWS General Reference, "Create a canonical request"):
 * headers, URI and query string, each rebuilt from what the request itself carried.
 */

const MAX_ECHOED_CHARS = 256;

/** Decoded query parameter plus its SigV4 (RFC 3986) encoding, for the canonical query. */
export interface QueryParameter {
  readonly name: string;
  readonly value: string;
  readonly encodedName: string;
  readonly encodedValue: string;
}

/** Lowercased header name → values in arrival order. */
export function indexHeaders(rawHeaders: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const values = headers.get(name);
    if (values === undefined) headers.set(name, [rawHeaders[i + 1]]);
    else values.push(rawHeaders[i + 1]);
  }
  return headers;
}

export function joinedHeader(headers: Map<string, string[]>, name: string): string | undefined {
  const values = headers.get(name);
  return values === undefined ? undefined : values.map(canonicalHeaderValue).join(',');
}

/**
 * `name:value\n` for each signed header, in the client's order; repeated headers are joined by
 * ',' in arrival order. HTTP/2 carries the host as `:authority`.
 */
export function canonicalHeaderBlock(headers: Map<string, string[]>, signedHeaderNames: readonly string[]): string {
  let block = '';
  for (const name of signedHeaderNames) {
    const values = headers.get(name) ?? (name === 'host' ? headers.get(':authority') : undefined);
    if (values === undefined) {
      throw new KmsError('InvalidSignatureException', `Header '${quote(name)}' is named in SignedHeaders but is not present in the request.`);
    }
    block += `${name}:${values.length === 1 ? canonicalHeaderValue(values[0]) : values.map(canonicalHeaderValue).join(',')}\n`;
  }
  return block;
}

/** Trims the value and collapses inner runs of spaces and tabs to one space (SigV4 "Trimall"). */
export function canonicalHeaderValue(value: string): string {
  let clean = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 9 || (c === 32 && (i === 0 || i === value.length - 1 || value.charCodeAt(i + 1) === 32))) {
      clean = false;
      break;
    }
  }
  if (clean) return value;
  let out = '';
  let pendingSpace = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 32 || c === 9) {
      pendingSpace = out.length > 0;
      continue;
    }
    if (pendingSpace) out += ' ';
    pendingSpace = false;
    out += value[i];
  }
  return out;
}

/**
 * The path as received (still percent-encoded), normalised (empty, `.` and `..` segments
 * resolved) and each segment URI-encoded again: every service but S3 double-encodes.
 */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '/') return rawPath; // every KMS request
  let path = rawPath;
  if (!path.startsWith('/')) {
    // Absolute-form request target (http://host/path): keep only the path.
    const authorityStart = path.indexOf('//');
    const pathStart = authorityStart < 0 ? -1 : path.indexOf('/', authorityStart + 2);
    path = pathStart < 0 ? '/' : path.slice(pathStart);
  }
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(uriEncode(segment));
  }
  if (segments.length === 0) return '/';
  return `/${segments.join('/')}${path.endsWith('/') ? '/' : ''}`;
}

/** Sorted by encoded name, then encoded value; a presigned URL's own signature is left out. */
export function canonicalQuery(query: readonly QueryParameter[], presigned: boolean): string {
  if (query.length === 0) return '';
  const pairs: QueryParameter[] = [];
  for (const parameter of query) {
    if (presigned && parameter.name === 'X-Amz-Signature') continue;
    pairs.push(parameter);
  }
  pairs.sort((a, b) =>
    a.encodedName < b.encodedName
      ? -1
      : a.encodedName > b.encodedName
        ? 1
        : a.encodedValue < b.encodedValue
          ? -1
          : a.encodedValue > b.encodedValue
            ? 1
            : 0,
  );
  return pairs.map((p) => `${p.encodedName}=${p.encodedValue}`).join('&');
}

export function parseQuery(rawQuery: string): QueryParameter[] {
  const parameters: QueryParameter[] = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = uriDecode(equals < 0 ? pair : pair.slice(0, equals));
    const value = equals < 0 ? '' : uriDecode(pair.slice(equals + 1));
    parameters.push({ name, value, encodedName: uriEncode(name), encodedValue: uriEncode(value) });
  }
  return parameters;
}

export function firstQueryValue(query: readonly QueryParameter[], name: string): string | undefined {
  for (const parameter of query) if (parameter.name === name) return parameter.value;
  return undefined;
}

/** `+` stays literal: SigV4 signers encode a space as %20. Undecodable input is kept as sent. */
export function uriDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** RFC 3986 encoding as SigV4 wants: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded. */
export function uriEncode(text: string): string {
  let encoded: string;
  try {
    encoded = encodeURIComponent(text);
  } catch {
    return text; // a lone surrogate; the signature will simply not match
  }
  return encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Request values echoed in messages: printable and bounded, so they cannot forge log lines. */
export function quote(value: string): string {
  const bounded = value.length > MAX_ECHOED_CHARS ? `${value.slice(0, MAX_ECHOED_CHARS)}…` : value;
  // eslint-disable-next-line no-control-regex
  return bounded.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/**
 * Hex SHA-256. crypto.hash (Node >= 20.12) is the one-shot form without a Hash object, about
 * twice as fast on the short inputs every request hashes twice; older 20.x fall back.
 */
export const sha256Hex: (data: string | Buffer) => string =
  typeof nodeCrypto.hash === 'function'
    ? (data) => nodeCrypto.hash('sha256', data, 'hex')
    : (data) => nodeCrypto.createHash('sha256').update(data).digest('hex');
