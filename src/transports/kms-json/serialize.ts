/**
 * AWS JSON 1.1 response bodies: blobs as standard base64 strings, timestamps as epoch seconds
 * (a JSON number, fractional when there are milliseconds), absent members omitted.
 * (Smithy aws-json protocol, "Shape serialization"; see PROTOCOL-NOTES.md.)
 */

/**
 * Serialises an operation's output. `undefined` (an operation with no output) is the empty
 * body, which the protocol prefers for empty outputs. The input is never mutated: conversion
 * happens in the replacer, which JSON.stringify calls on a read-only walk.
 */
export function serializeOutput(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, awsJsonReplacer);
}

function awsJsonReplacer(this: unknown, key: string, value: unknown): unknown {
  // JSON.stringify has already applied toJSON (Buffer → {type,data}, Date → ISO string), so
  // look at the original on the holder instead.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) {
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  }
  if (original instanceof Date) {
    const milliseconds = original.getTime();
    if (Number.isNaN(milliseconds)) throw new TypeError('cannot serialise an invalid Date');
    return milliseconds / 1000;
  }
  return value;
}
