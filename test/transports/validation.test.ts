import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { KmsError } from '../../src/service/errors.ts';
import { inputShapeOf, operationNames, shape } from '../../src/transports/kms-json/model.ts';
import { serializeOutput } from '../../src/transports/kms-json/serialize.ts';
import {
  compileModelPattern,
  compileRequestParsers,
  createRequestParser,
} from '../../src/transports/kms-json/validation.ts';

const parsers = compileRequestParsers();
const parse = createRequestParser(parsers);

/** LocalStack's recordings against real AWS KMS (Apache-2.0, see test/reference/NOTICE). */
const snapshot = JSON.parse(
  readFileSync(new URL('../reference/localstack-kms.snapshot.json', import.meta.url), 'utf8'),
) as Record<string, { 'recorded-content': Record<string, { Error: { Code: string; Message: string } }> }>;

function recordedError(testId: string, recording: string): { Code: string; Message: string } {
  const entry = snapshot[`tests/aws/services/kms/test_kms.py::TestKMS::${testId}`];
  assert.ok(entry, `snapshot has ${testId}`);
  return entry['recorded-content'][recording].Error;
}

function parseFailure(operation: string, body: unknown): KmsError {
  try {
    parse(operation, body);
  } catch (error) {
    assert.ok(error instanceof KmsError, `expected a KmsError, got ${String(error)}`);
    return error;
  }
  assert.fail(`${operation} accepted ${JSON.stringify(body)}`);
}

/** AWS prints an enum's values in arbitrary (hash-set) order: compare them as sets. */
function sortEnumSets(message: string): string {
  return message.replace(/enum value set: \[([^\]]*)\]/g, (_match, items: string) =>
    `enum value set: [${items.split(', ').sort().join(', ')}]`,
  );
}

/** Splits `... enum value set: [A, B]` into the text with the set emptied and the set's items. */
function splitEnumSet(message: string): [string, string[]] {
  const match = /enum value set: \[([^\]]*)\]$/.exec(message);
  if (match === null) return [message, []];
  return [message.slice(0, match.index) + 'enum value set: []', match[1].split(', ')];
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

describe('validation messages match what AWS answered in the LocalStack snapshot', () => {
  const cases: { title: string; testId: string; recording: string; operation: string; body: unknown }[] = [
    {
      title: 'GenerateRandom with NumberOfBytes 0 is below the minimum',
      testId: 'test_generate_random_invalid_number_of_bytes[0]',
      recording: 'generate-random-exc',
      operation: 'GenerateRandom',
      body: { NumberOfBytes: 0 },
    },
    {
      title: 'GenerateRandom with NumberOfBytes 1025 is above the maximum',
      testId: 'test_generate_random_invalid_number_of_bytes[1025]',
      recording: 'generate-random-exc',
      operation: 'GenerateRandom',
      body: { NumberOfBytes: 1025 },
    },
    {
      title: 'Encrypt with 4097 bytes of plaintext omits the sensitive value',
      testId: 'test_plaintext_size_for_encrypt',
      recording: 'invalid-plaintext-size-encrypt',
      operation: 'Encrypt',
      body: { KeyId: KEY_ID, Plaintext: Buffer.alloc(4097, 0x61).toString('base64') },
    },
    {
      title: "CreateKey with KeySpec 'HMAC_random' names the enum set",
      testId: 'test_hmac_create_key_invalid_operations',
      recording: 'create-hmac-key-invalid-spec',
      operation: 'CreateKey',
      body: { KeySpec: 'HMAC_random', KeyUsage: 'GENERATE_VERIFY_MAC' },
    },
    {
      title: "CreateKey with KeyUsage 'RANDOM' names the enum set",
      testId: 'test_hmac_create_key_invalid_operations',
      recording: 'create-hmac-key-invalid-key-usage',
      operation: 'CreateKey',
      body: { KeySpec: 'HMAC_256', KeyUsage: 'RANDOM' },
    },
    {
      title: "GenerateMac with MacAlgorithm 'INVALID' names the enum set",
      testId: 'test_invalid_generate_mac[HMAC_256-INVALID]',
      recording: 'generate-mac',
      operation: 'GenerateMac',
      body: { KeyId: KEY_ID, Message: b64('some message'), MacAlgorithm: 'INVALID' },
    },
    {
      title: "VerifyMac with MacAlgorithm 'INVALID' names the enum set",
      testId: 'test_invalid_verify_mac[HMAC_256-INVALID-some important message]',
      recording: 'verify-mac',
      operation: 'VerifyMac',
      body: { KeyId: KEY_ID, Message: b64('some important message'), Mac: b64('mac'), MacAlgorithm: 'INVALID' },
    },
    {
      title: "DeriveSharedSecret with KeyAgreementAlgorithm 'INVALID' names the enum set",
      testId: 'test_derive_shared_secret',
      recording: 'response-invalid-key-agreement-algo',
      operation: 'DeriveSharedSecret',
      body: { KeyId: KEY_ID, KeyAgreementAlgorithm: 'INVALID', PublicKey: b64('public key') },
    },
    {
      title: 'CreateKey with a 129-character tag key names tags.1.member.tagKey',
      testId: 'test_create_key_with_invalid_tag_key[too_long_key]',
      recording: 'invalid-tag-key',
      operation: 'CreateKey',
      body: { Tags: [{ TagKey: 'a'.repeat(129), TagValue: 'value' }] },
    },
    {
      title: 'CreateKey with a 257-character tag value names tags.1.member.tagValue',
      testId: 'test_key_with_long_tag_value_raises_error',
      recording: 'too-long-tag-value',
      operation: 'CreateKey',
      body: { Tags: [{ TagKey: 'key', TagValue: 'v'.repeat(257) }] },
    },
  ];

  for (const { title, testId, recording, operation, body } of cases) {
    test(title, () => {
      const recorded = recordedError(testId, recording);
      const error = parseFailure(operation, body);
      assert.equal(error.errorName, recorded.Code);
      const [recordedText, recordedSet] = splitEnumSet(recorded.Message);
      const [actualText, actualSet] = splitEnumSet(error.message);
      assert.equal(actualText, recordedText);
      // The model has gained values (e.g. ML_DSA_44, KEY_AGREEMENT) since some recordings.
      for (const value of recordedSet) assert.ok(actualSet.includes(value), `${value} in ${error.message}`);
    });
  }
});

describe('constraint violations', () => {
  const cases: { title: string; operation: string; body: unknown; message: string }[] = [
    {
      title: 'a missing required member is reported as null',
      operation: 'Encrypt',
      body: { Plaintext: b64('x') },
      message:
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    },
    {
      title: 'a required member sent as JSON null is reported as missing',
      operation: 'DescribeKey',
      body: { KeyId: null },
      message:
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    },
    {
      title: 'a missing required member inside a list element is reported by its nested path',
      operation: 'TagResource',
      body: { KeyId: KEY_ID, Tags: [{ TagKey: 'a', TagValue: 'b' }, { TagKey: 'c' }] },
      message:
        "1 validation error detected: Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null",
    },
    {
      title: 'TagResource with a 129-character tag key names tags.1.member.tagKey',
      operation: 'TagResource',
      body: { KeyId: KEY_ID, Tags: [{ TagKey: 'k'.repeat(129), TagValue: 'v' }] },
      message: `1 validation error detected: Value '${'k'.repeat(129)}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128`,
    },
    {
      title: 'CreateAlias with a name outside the pattern quotes the model pattern',
      operation: 'CreateAlias',
      body: { AliasName: 'alias/has space', TargetKeyId: KEY_ID },
      message:
        "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    },
    {
      title: 'an empty string breaks both the minimum length and the pattern',
      operation: 'CreateAlias',
      body: { AliasName: '', TargetKeyId: KEY_ID },
      message:
        "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    },
    {
      title: 'two violations are joined in model member order',
      operation: 'CreateKey',
      body: { KeySpec: 'HMAC_random', KeyUsage: 'RANDOM' },
      message:
        "2 validation errors detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT, SIGN_VERIFY]; Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [ECC_NIST_EDWARDS25519, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, HMAC_224, HMAC_256, HMAC_384, HMAC_512, ML_DSA_44, ML_DSA_65, ML_DSA_87, RSA_2048, RSA_3072, RSA_4096, SM2, SYMMETRIC_DEFAULT]",
    },
    {
      title: 'an integer below its minimum other than NumberOfBytes uses the same form',
      operation: 'ScheduleKeyDeletion',
      body: { KeyId: KEY_ID, PendingWindowInDays: 0 },
      message:
        "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 1",
    },
    {
      title: 'an empty ciphertext blob prints the byte buffer, never its bytes',
      operation: 'Decrypt',
      body: { CiphertextBlob: '' },
      message:
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]' at 'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1",
    },
    {
      title: 'a list longer than its maximum prints its elements',
      operation: 'Decrypt',
      body: { CiphertextBlob: b64('c'), GrantTokens: Array.from({ length: 11 }, (_, index) => `t${index}`) },
      message:
        "1 validation error detected: Value '[t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
    },
    {
      title: 'a nested member of a structure is named by its dotted path',
      operation: 'Decrypt',
      body: { CiphertextBlob: b64('c'), Recipient: { KeyEncryptionAlgorithm: 'RSA_1024' } },
      message:
        "1 validation error detected: Value 'RSA_1024' at 'recipient.keyEncryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSAES_OAEP_SHA_256]",
    },
    {
      title: 'a sensitive password is never echoed',
      operation: 'CreateCustomKeyStore',
      body: { CustomKeyStoreName: 'store', KeyStorePassword: 'hunter' },
      message:
        "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: Member must have length greater than or equal to 7",
    },
    {
      title: 'XKS proxy credentials are never echoed, whatever the constraint',
      operation: 'CreateCustomKeyStore',
      body: {
        CustomKeyStoreName: 'store',
        XksProxyAuthenticationCredential: { AccessKeyId: 'lowercase-access-key-id', RawSecretAccessKey: 'short!secret' },
      },
      message:
        "3 validation errors detected: Value at 'xksProxyAuthenticationCredential.accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Z2-7]+$; Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to satisfy constraint: Member must have length greater than or equal to 43; Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\/+=]+$",
    },
  ];

  for (const { title, operation, body, message } of cases) {
    test(title, () => {
      const error = parseFailure(operation, body);
      assert.equal(error.errorName, 'ValidationException');
      assert.equal(error.status, 400);
      assert.equal(sortEnumSets(error.message), sortEnumSets(message));
    });
  }

  test('GenerateRandom without NumberOfBytes passes: the model does not require it', () => {
    // AWS answers "NumberOfBytes is required." (snapshot) from the service, not the model.
    assert.deepEqual(parse('GenerateRandom', {}), {});
  });
});

describe('SerializationException for what cannot be deserialised', () => {
  const cases: { title: string; operation: string; body: unknown }[] = [
    { title: 'a body that is a JSON array', operation: 'ListKeys', body: [] },
    { title: 'a body that is a JSON string', operation: 'ListKeys', body: 'ListKeys' },
    { title: 'a body that is JSON null', operation: 'ListKeys', body: null },
    { title: 'a string where an integer is expected', operation: 'GenerateRandom', body: { NumberOfBytes: '32' } },
    { title: 'a fraction where an integer is expected', operation: 'GenerateRandom', body: { NumberOfBytes: 1.5 } },
    { title: 'an integer beyond 32 bits', operation: 'GenerateRandom', body: { NumberOfBytes: 2 ** 31 } },
    { title: 'a string where a boolean is expected', operation: 'CreateKey', body: { MultiRegion: 'true' } },
    { title: 'a number where a string is expected', operation: 'DescribeKey', body: { KeyId: 1234 } },
    { title: 'an object where a list is expected', operation: 'TagResource', body: { KeyId: KEY_ID, Tags: {} } },
    { title: 'a string where a structure is expected', operation: 'TagResource', body: { KeyId: KEY_ID, Tags: ['k=v'] } },
    { title: 'a list where a map is expected', operation: 'Encrypt', body: { KeyId: KEY_ID, Plaintext: b64('x'), EncryptionContext: ['a'] } },
    { title: 'a number as a map value', operation: 'Encrypt', body: { KeyId: KEY_ID, Plaintext: b64('x'), EncryptionContext: { a: 1 } } },
    { title: 'a string where a timestamp is expected', operation: 'ImportKeyMaterial', body: { KeyId: KEY_ID, ImportToken: b64('t'), EncryptedKeyMaterial: b64('m'), ValidTo: '2030-01-01T00:00:00Z' } },
    { title: 'a number where a blob is expected', operation: 'Encrypt', body: { KeyId: KEY_ID, Plaintext: 1 } },
    ...['YWJj!', 'YWJ', 'YQ', 'YQ=', 'YQ===', '=YQ=', 'YQ==YQ==', 'YW Jj', 'YWJj\n', 'YW-_'].map((plaintext) => ({
      title: `a blob that is not standard base64: ${JSON.stringify(plaintext)}`,
      operation: 'Encrypt',
      body: { KeyId: KEY_ID, Plaintext: plaintext },
    })),
  ];

  for (const { title, operation, body } of cases) {
    test(`rejects ${title}`, () => {
      const error = parseFailure(operation, body);
      assert.equal(error.errorName, 'SerializationException');
      assert.equal(error.status, 400);
    });
  }

  test('a type error wins over constraint violations found before it', () => {
    const error = parseFailure('CreateKey', { KeyUsage: 'RANDOM', MultiRegion: 'yes' });
    assert.equal(error.errorName, 'SerializationException');
  });
});

describe('what is never echoed', () => {
  const contextValue = 'context-value-that-is-secret';
  const contextKey = 'context-key-that-is-secret';
  const context = { [contextKey]: contextValue };
  const cases: { title: string; operation: string; body: unknown }[] = [
    { title: 'Encrypt with plaintext too long', operation: 'Encrypt', body: { KeyId: KEY_ID, Plaintext: Buffer.alloc(4097).toString('base64'), EncryptionContext: context } },
    { title: 'Encrypt without a key id', operation: 'Encrypt', body: { Plaintext: b64('x'), EncryptionContext: context } },
    { title: 'Decrypt with an empty blob', operation: 'Decrypt', body: { CiphertextBlob: '', EncryptionContext: context } },
    { title: 'Decrypt with a context value of the wrong type', operation: 'Decrypt', body: { CiphertextBlob: b64('c'), EncryptionContext: { ...context, [contextValue]: 7 } } },
    { title: 'GenerateDataKey with too many bytes', operation: 'GenerateDataKey', body: { KeyId: KEY_ID, NumberOfBytes: 2000, EncryptionContext: context } },
    { title: 'ReEncrypt without a destination', operation: 'ReEncrypt', body: { CiphertextBlob: b64('c'), SourceEncryptionContext: context, DestinationEncryptionContext: context } },
    { title: 'CreateGrant with context constraints and no operations', operation: 'CreateGrant', body: { KeyId: KEY_ID, Constraints: { EncryptionContextSubset: context, EncryptionContextEquals: context } } },
    { title: 'Encrypt with plaintext that is not base64', operation: 'Encrypt', body: { KeyId: KEY_ID, Plaintext: `${contextValue}!`, EncryptionContext: context } },
  ];

  for (const { title, operation, body } of cases) {
    test(`an encryption context key or value is not in the error for ${title}`, () => {
      const error = parseFailure(operation, body);
      assert.ok(!error.message.includes(contextValue), error.message);
      assert.ok(!error.message.includes(contextKey), error.message);
    });
  }

  test('plaintext bytes are not in the error for plaintext that is too long', () => {
    const error = parseFailure('Encrypt', { KeyId: KEY_ID, Plaintext: Buffer.alloc(4097, 0x5a).toString('base64') });
    assert.ok(!error.message.includes('ZZZZ'), error.message);
    assert.ok(!error.message.includes('WlpaW'), error.message);
  });
});

describe('parsed input', () => {
  test('every operation in the model has a parser that accepts {} or names what is missing', () => {
    assert.deepEqual([...parsers.keys()].sort(), operationNames().sort());
    for (const [operation, parseOperation] of parsers) {
      try {
        assert.equal(typeof parseOperation({}), 'object');
      } catch (error) {
        assert.ok(error instanceof KmsError, operation);
        assert.equal(error.errorName, 'ValidationException', operation);
        assert.match(error.message, /Member must not be null/, operation);
      }
    }
  });

  test('an operation the model lacks is UnknownOperationException', () => {
    assert.throws(() => parse('MakeCoffee', {}), (error) => error instanceof KmsError && error.errorName === 'UnknownOperationException');
  });

  test('members the model does not know are dropped', () => {
    const body = JSON.parse('{"NumberOfBytes": 32, "Bogus": 1, "numberOfBytes": 7, "__proto__": {"polluted": true}}');
    const input = parse('GenerateRandom', body);
    assert.deepEqual(input, { NumberOfBytes: 32 });
    assert.equal(Object.getPrototypeOf(input), Object.prototype);
  });

  test('JSON null members are absent', () => {
    assert.deepEqual(parse('GenerateRandom', { NumberOfBytes: null, CustomKeyStoreId: null }), {});
  });

  test('blobs come back as Buffers of the decoded bytes, nested ones too', () => {
    const input = parse('Decrypt', {
      CiphertextBlob: b64('ciphertext'),
      Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: b64('attestation') },
    });
    assert.ok(Buffer.isBuffer(input.CiphertextBlob));
    assert.equal((input.CiphertextBlob as Buffer).toString(), 'ciphertext');
    const recipient = input.Recipient as Record<string, unknown>;
    assert.ok(Buffer.isBuffer(recipient.AttestationDocument));
    assert.equal((recipient.AttestationDocument as Buffer).toString(), 'attestation');
  });

  test('timestamps in epoch seconds, fractional or not, come back as Dates', () => {
    const body = { KeyId: KEY_ID, ImportToken: b64('t'), EncryptedKeyMaterial: b64('m') };
    assert.deepEqual(parse('ImportKeyMaterial', { ...body, ValidTo: 1700000000.123 }).ValidTo, new Date(1700000000123));
    assert.deepEqual(parse('ImportKeyMaterial', { ...body, ValidTo: 1700000000 }).ValidTo, new Date(1700000000000));
  });

  test('strings, enums, booleans, lists and maps pass through as sent', () => {
    const input = parse('CreateGrant', {
      KeyId: KEY_ID,
      GranteePrincipal: 'arn:aws:iam::111122223333:role/app',
      Operations: ['Encrypt', 'Decrypt'],
      Constraints: { EncryptionContextSubset: { tenant: 'a', '': '' } },
      GrantTokens: ['token'],
      DryRun: false,
    });
    assert.deepEqual(input, {
      KeyId: KEY_ID,
      GranteePrincipal: 'arn:aws:iam::111122223333:role/app',
      Operations: ['Encrypt', 'Decrypt'],
      Constraints: { EncryptionContextSubset: { tenant: 'a', '': '' } },
      GrantTokens: ['token'],
      DryRun: false,
    });
  });

  test('an encryption-context key named __proto__ is kept as an own entry', () => {
    const body = JSON.parse(`{"KeyId": "${KEY_ID}", "Plaintext": "eA==", "EncryptionContext": {"__proto__": "x", "a": "b"}}`);
    const context = parse('Encrypt', body).EncryptionContext as Record<string, unknown>;
    assert.deepEqual(Object.entries(context), [['__proto__', 'x'], ['a', 'b']]);
    assert.equal(Object.getPrototypeOf(context), Object.prototype);
  });

  test('string lengths count code points, as the Smithy length trait does', () => {
    // 128 astral characters are 256 UTF-16 code units but 128 code points: within TagKey's 128.
    const tagKey = '\u{1F511}'.repeat(128);
    assert.deepEqual(parse('UntagResource', { KeyId: KEY_ID, TagKeys: [tagKey] }).TagKeys, [tagKey]);
  });
});

describe('model patterns', () => {
  const patternShapes = allShapeNames().filter((name) => patternOf(name) !== undefined);

  test('the model has patterns to compile', () => {
    assert.ok(patternShapes.length >= 20);
  });

  for (const name of patternShapes) {
    test(`the ${name} pattern compiles to an anchored JS RegExp`, () => {
      const regex = compileModelPattern(patternOf(name)!);
      assert.ok(regex.source.startsWith('^(?:') && regex.source.endsWith(')$'));
      assert.ok(regex.unicode);
    });
  }

  const matches: { title: string; pattern: string; value: string; expected: boolean }[] = [
    { title: 'an unanchored model pattern must match the whole value', pattern: '[0-9]{12}', value: 'x111122223333', expected: false },
    { title: 'an unanchored model pattern matches an exact value', pattern: '[0-9]{12}', value: '111122223333', expected: true },
    { title: 'a class with \\w matches word characters', pattern: '[\\w]+', value: 'default', expected: true },
    { title: 'Java \\s matches an ASCII space', pattern: '^[a-zA-Z0-9:/_\\s.-]+$', value: 'my material v1.0', expected: true },
    { title: 'Java \\s does not match a no-break space, unlike JS \\s', pattern: '^[a-zA-Z0-9:/_\\s.-]+$', value: 'a\u00A0b', expected: false },
    { title: 'an alternation of anchored branches accepts either branch', pattern: '^(/[a-zA-Z0-9\\/_-]+/kms/xks/v\\d{1,2})$|^(/kms/xks/v\\d{1,2})$', value: '/kms/xks/v1', expected: true },
    { title: 'an alternation of anchored branches rejects a suffix', pattern: '^(/[a-zA-Z0-9\\/_-]+/kms/xks/v\\d{1,2})$|^(/kms/xks/v\\d{1,2})$', value: '/kms/xks/v1/x', expected: false },
    { title: 'a \\u range rejects characters above it', pattern: '[\\u0020-\\u00FF]*', value: 'marker\u0100', expected: false },
    { title: 'a trailing newline does not slip past $', pattern: '^[a-zA-Z0-9:/_-]+$', value: 'alias/x\n', expected: false },
  ];
  for (const { title, pattern, value, expected } of matches) {
    test(title, () => {
      assert.equal(compileModelPattern(pattern).test(value), expected);
    });
  }

  for (const unsupported of ['\\p{Alpha}+', '[a-z&&[^b]]', '\\Aabc\\z']) {
    test(`refuses Java syntax it cannot translate faithfully: ${unsupported}`, () => {
      assert.throws(() => compileModelPattern(unsupported));
    });
  }
});

describe('model accessors', () => {
  test('name operations, their input shapes and shapes', () => {
    assert.ok(operationNames().includes('Encrypt'));
    assert.equal(inputShapeOf('Encrypt'), 'EncryptRequest');
    const plaintext = shape('PlaintextType');
    assert.equal(plaintext.type, 'blob');
    assert.equal(plaintext.sensitive, true);
  });

  test('throw for names the model lacks', () => {
    assert.throws(() => inputShapeOf('MakeCoffee'));
    assert.throws(() => shape('NoSuchShape'));
  });
});

describe('serializeOutput', () => {
  test('writes Buffers and Uint8Arrays as standard base64, honouring the view', () => {
    const backing = new Uint8Array([0xff, 0xfb, 0xef, 0x00, 0x01]);
    const output = { CiphertextBlob: Buffer.from([0xfb, 0xff, 0xbf]), PublicKey: backing.subarray(1, 3) };
    assert.equal(serializeOutput(output), '{"CiphertextBlob":"+/+/","PublicKey":"++8="}');
  });

  test('writes Dates as epoch seconds, fractional when there are milliseconds', () => {
    assert.equal(serializeOutput({ CreationDate: new Date(1700000000123) }), '{"CreationDate":1700000000.123}');
    assert.equal(serializeOutput({ CreationDate: new Date(1700000000000) }), '{"CreationDate":1700000000}');
  });

  test('omits undefined members, nested ones too', () => {
    const output = { KeyId: KEY_ID, Description: undefined, Keys: [{ KeyId: 'k', KeyArn: undefined }] };
    assert.equal(serializeOutput(output), `{"KeyId":"${KEY_ID}","Keys":[{"KeyId":"k"}]}`);
  });

  test('never mutates its input', () => {
    const blob = Buffer.from('abc');
    const date = new Date(1700000000500);
    const output = { KeyMetadata: { CreationDate: date, Blob: blob, Tags: [{ TagKey: 'a' }] } };
    serializeOutput(output);
    assert.strictEqual(output.KeyMetadata.Blob, blob);
    assert.strictEqual(output.KeyMetadata.CreationDate, date);
    assert.equal(blob.toString(), 'abc');
    assert.equal(date.getTime(), 1700000000500);
    assert.deepEqual(output.KeyMetadata.Tags, [{ TagKey: 'a' }]);
  });

  test('an operation without output is the empty body', () => {
    assert.equal(serializeOutput(undefined), '');
    assert.equal(serializeOutput({}), '{}');
  });

  test('refuses an invalid Date rather than writing null', () => {
    assert.throws(() => serializeOutput({ DeletionDate: new Date(Number.NaN) }), TypeError);
  });

  test('round-trips a parsed request', () => {
    const input = parse('Encrypt', { KeyId: KEY_ID, Plaintext: b64('hello') });
    assert.equal(serializeOutput(input), `{"KeyId":"${KEY_ID}","Plaintext":"${b64('hello')}"}`);
  });
});

function allShapeNames(): string[] {
  const model = JSON.parse(
    readFileSync(new URL('../../src/transports/kms-json/model/kms-service-2.json', import.meta.url), 'utf8'),
  ) as { shapes: Record<string, unknown> };
  return Object.keys(model.shapes);
}

function patternOf(name: string): string | undefined {
  const definition = shape(name);
  return definition.type === 'string' ? definition.pattern : undefined;
}

describe('serializeOutput keeps caller-chosen member names as data', () => {
  test('writes a map key named __proto__ as an ordinary member', async () => {
    const { serializeOutput } = await import('../../src/transports/kms-json/serialize.ts');
    const map = JSON.parse('{"__proto__": "v", "a": "b"}') as Record<string, string>;
    assert.equal(serializeOutput({ EncryptionContext: map }), '{"EncryptionContext":{"__proto__":"v","a":"b"}}');
  });
});

describe('strings must be well-formed Unicode', () => {
  const parsers = compileRequestParsers();
  test('refuses a lone surrogate anywhere: description, tag value, context key and value', () => {
    const cases: [string, unknown][] = [
      ['CreateKey', JSON.parse('{"Description": "a\\ud800b"}')],
      ['TagResource', JSON.parse('{"KeyId": "k", "Tags": [{"TagKey": "t", "TagValue": "\\udfff"}]}')],
      ['Encrypt', JSON.parse('{"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": {"\\ud800": "v"}}')],
      ['Encrypt', JSON.parse('{"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": {"k": "\\ud800"}}')],
    ];
    for (const [operation, body] of cases) {
      assert.throws(() => parsers.get(operation)!(body), (error: KmsError) => error.errorName === 'SerializationException');
    }
  });
  test('accepts characters outside the Basic Multilingual Plane (surrogate pairs)', () => {
    const input = parsers.get('CreateKey')!({ Description: 'key 🔑 𝐀' });
    assert.equal(input.Description, 'key 🔑 𝐀');
  });
});
