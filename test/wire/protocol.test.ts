/**
 * The AWS JSON 1.1 framing and SigV4 front door, over raw HTTP against a real `strongroom serve`
 * process (PROTOCOL-NOTES §1), plus the one behaviour that needs the real SDK: clock-skew
 * correction from our Date header.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { ListKeysCommand } from '@aws-sdk/client-kms';
import { HttpRequest } from '@smithy/protocol-http';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { kmsSigner } from '../support/sigv4-signing.ts';

const JSON_1_1 = 'application/x-amz-json-1.1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MINUTE = 60_000;
const MAX_BODY = 1024 * 1024;
const INVALID_TOKEN = 'The security token included in the request is invalid.';
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
/** Something no server message would ever contain by accident. */
const MARKER = 'SR-LEAK-MARKER-7f3a9c';

interface Exchange {
  /** Which operation, or `null` for no X-Amz-Target header. */
  target?: string | null;
  body?: string | Buffer;
  method?: string;
  path?: string;
  /** `false` sends no Authorization at all. */
  sign?: false | {
    accessKeyId?: string;
    secretAccessKey?: string;
    sessionToken?: string;
    region?: string;
    signingDate?: Date;
  };
  /** Stream the body in chunks without a Content-Length. */
  chunked?: boolean;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Record<string, unknown>;
}

let server: RunningServer;
let url: URL;

async function exchange(options: Exchange): Promise<Reply> {
  const body = options.body ?? '{}';
  const headers: Record<string, string> = {
    'content-type': JSON_1_1,
    host: url.host,
  };
  const target = options.target === undefined ? 'TrentService.ListKeys' : options.target;
  if (target !== null) headers['x-amz-target'] = target;
  let signedHeaders = headers;
  if (options.sign !== false) {
    const sign = options.sign ?? {};
    const signer = kmsSigner({
      region: sign.region ?? server.region,
      credentials: {
        accessKeyId: sign.accessKeyId ?? server.credentials.accessKeyId,
        secretAccessKey: sign.secretAccessKey ?? server.credentials.secretAccessKey,
        sessionToken: sign.sessionToken,
      },
    });
    const unsigned = new HttpRequest({
      method: options.method ?? 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: options.path ?? '/',
      headers,
      body,
    });
    const signed = await signer.sign(unsigned, { signingDate: sign.signingDate ?? new Date() });
    signedHeaders = signed.headers;
  }
  return send(options, signedHeaders, body);
}

function send(options: Exchange, headers: Record<string, string>, body: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = httpRequest(
      {
        hostname: url.hostname,
        port: url.port,
        method: options.method ?? 'POST',
        path: options.path ?? '/',
        headers: options.chunked ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
        response.on('error', reject);
      },
    );
    // The server may answer (413) and close before it has read all of a large body.
    outgoing.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (options.chunked) {
      const bytes = Buffer.from(body);
      for (let offset = 0; offset < bytes.length; offset += 64 * 1024) outgoing.write(bytes.subarray(offset, offset + 64 * 1024));
      outgoing.end();
    } else {
      outgoing.end(body);
    }
  });
}

/** Every error: AWS's body shape, the name again in x-amzn-ErrorType, our JSON content type. */
function assertError(reply: Reply, status: number, name: string, message?: string | RegExp): Record<string, unknown> {
  assert.equal(reply.status, status, `status ${reply.status}: ${reply.text}`);
  assert.equal(reply.headers['content-type'], JSON_1_1);
  assert.equal(reply.headers['x-amzn-errortype'], name);
  assert.match(String(reply.headers['x-amzn-requestid']), UUID);
  const body = reply.json();
  assert.equal(body.__type, name);
  assert.equal(typeof body.message, 'string');
  if (typeof message === 'string') assert.equal(body.message, message);
  else if (message !== undefined) assert.match(body.message as string, message);
  return body;
}

function assertNoLeak(reply: Reply, ...secrets: string[]): void {
  for (const secret of secrets) {
    assert.equal(reply.text.includes(secret), false, `response body leaks ${secret.slice(0, 24)}…`);
    for (const value of Object.values(reply.headers)) assert.equal(String(value).includes(secret), false);
  }
}

before(async () => {
  server = await startServer();
  url = new URL(server.endpoint);
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

describe('a successful response', () => {
  test('has the JSON 1.1 content type, a uuid request id and an accurate Date', async () => {
    const reply = await exchange({ target: 'TrentService.GenerateRandom', body: '{"NumberOfBytes":16}' });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers['content-type'], JSON_1_1);
    assert.match(String(reply.headers['x-amzn-requestid']), UUID);
    const date = Date.parse(String(reply.headers.date));
    assert.ok(Math.abs(date - Date.now()) < 5_000, `Date header ${reply.headers.date} is not now`);
    assert.equal(Buffer.from(reply.json().Plaintext as string, 'base64').length, 16);
  });

  test('has a different request id each time', async () => {
    const [first, second] = await Promise.all([exchange({}), exchange({})]);
    assert.notEqual(first.headers['x-amzn-requestid'], second.headers['x-amzn-requestid']);
  });

  test('treats an empty body as {}', async () => {
    const reply = await exchange({ target: 'TrentService.ListKeys', body: '' });
    assert.equal(reply.status, 200, reply.text);
    assert.ok(Array.isArray(reply.json().Keys));
  });
});

describe('request framing errors', () => {
  const cases: Array<[string, Exchange, string]> = [
    ['an unknown X-Amz-Target', { target: 'TrentService.Nope' }, 'UnknownOperationException'],
    ['no X-Amz-Target', { target: null }, 'UnknownOperationException'],
    ['a target without the TrentService prefix', { target: 'ListKeys' }, 'UnknownOperationException'],
    ['a member of the wrong JSON type', { target: 'TrentService.GenerateRandom', body: '{"NumberOfBytes":"5"}' }, 'SerializationException'],
    ['a body that is a JSON array', { body: '[]' }, 'SerializationException'],
  ];
  for (const [description, request, name] of cases) {
    test(`answers 400 ${name} for ${description}`, async () => {
      assertError(await exchange(request), 400, name);
    });
  }

  test('answers 400 SerializationException for malformed JSON without echoing the body', async () => {
    const body = `{"KeyId":"alias/x","Plaintext":"${MARKER}`;
    const reply = await exchange({ target: 'TrentService.Encrypt', body });
    assertError(reply, 400, 'SerializationException');
    assertNoLeak(reply, MARKER);
  });

  const oversized: Array<[string, boolean]> = [
    ['with a Content-Length', false],
    ['streamed in chunks', true],
  ];
  for (const [description, chunked] of oversized) {
    test(`refuses a body over 1 MiB ${description} with 413 and keeps serving`, async () => {
      const body = Buffer.alloc(MAX_BODY + 1, 'a');
      const reply = await exchange({ sign: false, body, chunked });
      assertError(reply, 413, 'RequestEntityTooLargeException');
      const after = await exchange({});
      assert.equal(after.status, 200, after.text);
    });
  }

  test('answers GET /healthz with 200', async () => {
    const reply = await send({ method: 'GET', path: '/healthz' }, { host: url.host }, '');
    assert.equal(reply.status, 200);
  });
});

describe('authentication', () => {
  test('answers 400 MissingAuthenticationTokenException without an Authorization header', async () => {
    assertError(await exchange({ sign: false }), 400, 'MissingAuthenticationTokenException');
  });

  test('answers 400 InvalidSignatureException for a wrong secret, without leaking either secret', async () => {
    const wrongSecret = `${MARKER}-wrong-secret`;
    const reply = await exchange({ sign: { secretAccessKey: wrongSecret } });
    assertError(reply, 400, 'InvalidSignatureException', SIGNATURE_MISMATCH);
    assertNoLeak(reply, wrongSecret, server.credentials.secretAccessKey);
  });

  test('answers 400 UnrecognizedClientException for an unknown access key', async () => {
    const reply = await exchange({ sign: { accessKeyId: 'AKIAUNKNOWNUNKNOWN00' } });
    assertError(reply, 400, 'UnrecognizedClientException', INVALID_TOKEN);
  });

  test('answers 400 UnrecognizedClientException for a session token it never issued', async () => {
    const reply = await exchange({ sign: { sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDN' } });
    assertError(reply, 400, 'UnrecognizedClientException', INVALID_TOKEN);
  });

  test('answers 400 InvalidSignatureException "Signature expired" for a request signed 6 minutes ago', async () => {
    const reply = await exchange({ sign: { signingDate: new Date(Date.now() - 6 * MINUTE) } });
    assertError(reply, 400, 'InvalidSignatureException', /^Signature expired: /);
  });

  test('answers 400 InvalidSignatureException "Signature not yet current" for a request signed 6 minutes ahead', async () => {
    const reply = await exchange({ sign: { signingDate: new Date(Date.now() + 6 * MINUTE) } });
    assertError(reply, 400, 'InvalidSignatureException', /^Signature not yet current: /);
  });

  test('answers 400 InvalidSignatureException for credentials scoped to another region', async () => {
    const otherRegion = server.region === 'eu-west-1' ? 'us-west-2' : 'eu-west-1';
    const reply = await exchange({ sign: { region: otherRegion } });
    assertError(reply, 400, 'InvalidSignatureException', /^Credential should be scoped to a valid region/);
  });

  test('a request signed 4 minutes ago is still accepted, so the expiry case can fail', async () => {
    const reply = await exchange({ sign: { signingDate: new Date(Date.now() - 4 * MINUTE) } });
    assert.equal(reply.status, 200, reply.text);
  });
});

describe('the real SDK with a skewed clock', () => {
  test('fails on its only attempt when it cannot retry', async () => {
    const kms = server.kms({ systemClockOffset: -10 * MINUTE, maxAttempts: 1 });
    await assert.rejects(kms.send(new ListKeysCommand({})), (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(error.name, 'InvalidSignatureException');
      assert.equal(error.$metadata?.httpStatusCode, 400);
      assert.match(error.message, /^Signature expired: /);
      return true;
    });
  });

  test('corrects itself from our Date header and succeeds within 3 attempts', async () => {
    const kms = server.kms({ systemClockOffset: -10 * MINUTE, maxAttempts: 3 });
    const out = await kms.send(new ListKeysCommand({}));
    assert.ok(Array.isArray(out.Keys));
    assert.ok(Math.abs(kms.config.systemClockOffset ?? -10 * MINUTE) < 5_000, 'the SDK adopted our clock');
  });
});

describe('secrets in responses', () => {
  test('an Encrypt whose plaintext fails validation does not echo the plaintext', async () => {
    const plaintext = Buffer.from(MARKER.repeat(Math.ceil(4097 / MARKER.length))).subarray(0, 4097);
    const encoded = plaintext.toString('base64');
    const reply = await exchange({ target: 'TrentService.Encrypt', body: JSON.stringify({ KeyId: 'alias/none', Plaintext: encoded }) });
    assertError(
      reply,
      400,
      'ValidationException',
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    assertNoLeak(reply, MARKER, encoded.slice(0, 64));
  });

  test('a plaintext of the wrong type is not echoed', async () => {
    const reply = await exchange({ target: 'TrentService.Encrypt', body: JSON.stringify({ KeyId: 'alias/none', Plaintext: 42, Extra: MARKER }) });
    assertError(reply, 400, 'SerializationException');
    assertNoLeak(reply, MARKER);
  });

  test('a plaintext that is not base64 is not echoed', async () => {
    const reply = await exchange({ target: 'TrentService.Encrypt', body: JSON.stringify({ KeyId: 'alias/none', Plaintext: `${MARKER}!` }) });
    assertError(reply, 400, 'SerializationException');
    assertNoLeak(reply, MARKER);
  });

  test('an encryption context value is not echoed by a validation error', async () => {
    const body = JSON.stringify({ KeyId: 'alias/none', Plaintext: 'AA==', EncryptionContext: { secret: MARKER }, EncryptionAlgorithm: 'NOPE' });
    const reply = await exchange({ target: 'TrentService.Encrypt', body });
    assertError(reply, 400, 'ValidationException');
    assertNoLeak(reply, MARKER);
  });
});
