/**
 * AWS JSON 1.1 response bodies: blobs as standard base64 strings, timestamps as epoch seconds
 * (a JSON number, fractional when there are milliseconds), absent members omitted.
 * (Smithy aws-json protocol, "Shape serialization"; see PROTOCOL-NOTES.md.)
 */

/**
 * Serialises an operation's output. `undefined` (an operation with no output) is the empty
 * body, which the protocol prefers for empty outputs. The input is never mutated: a JSON-ready
 * copy is built first. (A JSON.stringify replacer would see each Buffer only after its toJSON had
 * expanded it into an array of numbers — thousands of them for a 4 KB plaintext.)
 */
export function serializeOutput(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(toWireValue(value));
}

function toWireValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  }
  if (value instanceof Date) {
    const milliseconds = value.getTime();
    if (Number.isNaN(milliseconds)) throw new TypeError('cannot serialise an invalid Date');
    return milliseconds / 1000;
  }
  if (Array.isArray(value)) return value.map(toWireValue);
  // No prototype: a member named "__proto__" (a map key is caller data) stays an ordinary member.
  const wire: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value)) {
    const member = (value as Record<string, unknown>)[key];
    if (member !== undefined) wire[key] = toWireValue(member);
  }
  return wire;
}
