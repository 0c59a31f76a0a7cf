/**
 * Errors read as the server sent them. The SDK replaces an empty `message` (AWS's for
 * KMSInvalidSignatureException, KMSInvalidMacException, InvalidCiphertextException, …) with
 * "UnknownError", so a test that must tell "" from any other text reads the response body itself.
 */
import assert from 'node:assert/strict';
import type { KMSClient } from '@aws-sdk/client-kms';

/**
 * Keeps every response body as bytes on the response. Added at low priority in the deserialize
 * step, so it runs inside the SDK's deserializer and the SDK still parses the body it left.
 */
export function keepRawBodies(client: KMSClient): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { body?: AsyncIterable<Uint8Array> | Uint8Array };
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) chunks.push(chunk);
      response.body = Buffer.concat(chunks);
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'keepRawBodies' },
  );
}

export interface WireError {
  /** The error's name, or the names of which any will do. */
  name: string | string[];
  /** Exact text on the wire ('' included) where AWS's wording is known; a pattern where only its form is. */
  message?: string | RegExp;
  status?: number;
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; $response?: { body?: Uint8Array } };

/** Asserts the call fails with `expected`, reading name and message from the raw body (keepRawBodies). */
export async function assertWireError(call: Promise<unknown>, expected: WireError): Promise<void> {
  await assert.rejects(call, (error: SdkError) => {
    const names = Array.isArray(expected.name) ? expected.name : [expected.name];
    assert.ok(names.includes(error.name), `${error.name}: ${error.message} (expected ${names.join(' or ')})`);
    assert.equal(error.$metadata?.httpStatusCode, expected.status ?? 400);
    const body = error.$response?.body;
    assert.ok(body instanceof Uint8Array, 'the client keeps raw bodies (keepRawBodies)');
    const wire = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
    assert.equal(wire.__type, error.name, 'the SDK names the error the wire __type');
    const message = wire.message ?? wire.Message;
    if (typeof expected.message === 'string') assert.equal(message, expected.message);
    else if (expected.message !== undefined) assert.match(String(message), expected.message);
    return true;
  });
}

/**
 * AWS prints an enum's values in arbitrary order: compares the text around the set, then the set
 * (every recorded value must be there; the model may have gained values since the recording).
 */
export function assertEnumViolation(actual: string, expected: string): void {
  const split = (message: string): [string, string[]] => {
    const match = /enum value set: \[([^\]]*)\]$/.exec(message);
    assert.ok(match, `an enum violation: ${message}`);
    return [message.slice(0, match.index), match[1].split(', ')];
  };
  const [actualText, actualSet] = split(actual);
  const [expectedText, expectedSet] = split(expected);
  assert.equal(actualText, expectedText);
  for (const value of expectedSet) assert.ok(actualSet.includes(value), `${value} in ${actual}`);
}

/** The message of a wire error, read from the raw body. */
export async function wireErrorMessage(call: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await call;
  } catch (error) {
    const body = (error as SdkError).$response?.body;
    const wire = JSON.parse(Buffer.from(body ?? []).toString('utf8')) as Record<string, unknown>;
    return { name: (error as Error).name, message: String(wire.message ?? wire.Message ?? '') };
  }
  assert.fail('the call succeeded');
}
