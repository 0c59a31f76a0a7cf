/** What an audit event may and may not carry: the allowlist, redaction, identities, resources. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REDACTED, buildRequestEvent, buildServiceEvent, type AuditRequest } from '../../src/service/audit-events.ts';
import type { ServiceContext } from '../../src/service/context.ts';
import { KmsError } from '../../src/service/errors.ts';

const ACCOUNT = '111122223333';
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY_ID}`;
const principals: Record<string, object> = {
  [`arn:aws:iam::${ACCOUNT}:user/app`]: { kind: 'user', name: 'app', principalId: 'AIDAEXAMPLEEXAMPLE000', tags: [] },
  [`arn:aws:iam::${ACCOUNT}:role/worker`]: { kind: 'role', name: 'worker', principalId: 'AROAEXAMPLEEXAMPLE000', tags: [] },
};
const context = {
  accountId: ACCOUNT,
  region: 'us-east-1',
  partition: 'aws',
  store: { getPrincipal: async (arn: string) => principals[arn] },
} as unknown as ServiceContext;

const request = (overrides: Partial<AuditRequest>): AuditRequest => ({
  eventSource: 'kms.amazonaws.com',
  eventName: 'Encrypt',
  time: new Date('2026-11-29T12:00:00.123Z'),
  requestId: 'req-1',
  sourceIp: '127.0.0.1',
  userAgent: 'test',
  caller: {
    principalArn: `arn:aws:iam::${ACCOUNT}:user/app`,
    accessKeyId: 'AKIAEXAMPLE000000000',
    decisions: [{ action: 'kms:Encrypt', resource: KEY_ARN, allowed: true }],
  },
  ...overrides,
});

const build = async (overrides: Partial<AuditRequest>, encryptionContextValues = false) => {
  const entry = await buildRequestEvent(context, request(overrides), { encryptionContextValues });
  return { entry, event: JSON.parse(entry.text) as Record<string, any> };
};

describe('audit events', () => {
  test('a cryptographic request: CloudTrail fields, key resource, no plaintext or ciphertext, context values redacted', async () => {
    const { entry, event } = await build({
      input: { KeyId: 'alias/app', Plaintext: Buffer.from('secret plaintext'), EncryptionContext: { tenant: 'blue' } },
      output: { KeyId: KEY_ARN, CiphertextBlob: Buffer.from('ciphertext'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
    });
    assert.equal(event.eventVersion, '1.08');
    assert.equal(event.eventTime, '2026-11-29T12:00:00Z');
    assert.equal(event.readOnly, true);
    assert.deepEqual(event.requestParameters, { keyId: 'alias/app', encryptionContext: { tenant: REDACTED } });
    assert.deepEqual(event.responseElements, { keyId: KEY_ARN, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
    assert.deepEqual(event.resources, [{ accountId: ACCOUNT, type: 'AWS::KMS::Key', ARN: KEY_ARN }]);
    assert.equal(event.userIdentity.type, 'IAMUser');
    assert.equal(event.userIdentity.userName, 'app');
    assert.deepEqual(entry.keyIds, [KEY_ID]);
    assert.equal(entry.cryptoSuccess, true);
    assert.doesNotMatch(entry.text, /secret plaintext|ciphertext|blue/);
  });

  test('custom key stores: the store is named, the HSM password and the proxy secret never are', async () => {
    const { entry, event } = await build({
      eventName: 'CreateCustomKeyStore',
      caller: { principalArn: `arn:aws:iam::${ACCOUNT}:user/app`, accessKeyId: 'AKIAEXAMPLE000000000', decisions: [] },
      input: {
        CustomKeyStoreName: 'vault',
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyUriEndpoint: 'https://xks.example.com',
        XksProxyUriPath: '/kms/xks/v1',
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyAuthenticationCredential: { AccessKeyId: 'BETWEEN2TENAND32CHARACTERS', RawSecretAccessKey: 'PROXY-SECRET-ACCESS-KEY-VALUE' },
        KeyStorePassword: 'HSM-PASSWORD',
      },
      output: { CustomKeyStoreId: 'cks-1234567890abcdef0' },
    });
    assert.deepEqual(event.requestParameters, {
      customKeyStoreName: 'vault',
      customKeyStoreType: 'EXTERNAL_KEY_STORE',
      xksProxyUriEndpoint: 'https://xks.example.com',
      xksProxyUriPath: '/kms/xks/v1',
      xksProxyConnectivity: 'PUBLIC_ENDPOINT',
    });
    assert.deepEqual(event.responseElements, { customKeyStoreId: 'cks-1234567890abcdef0' });
    assert.equal(event.readOnly, false);
    assert.doesNotMatch(entry.text, /PROXY-SECRET|HSM-PASSWORD/);
  });

  test('context values only when the operator opted in', async () => {
    const { event } = await build({ input: { KeyId: KEY_ID, EncryptionContext: { tenant: 'blue' } } }, true);
    assert.deepEqual(event.requestParameters.encryptionContext, { tenant: 'blue' });
  });

  test('secrets in responses never: access keys, temporary credentials, data keys, private keys', async () => {
    const { entry } = await build({
      eventSource: 'sts.amazonaws.com',
      eventName: 'AssumeRole',
      input: { RoleArn: `arn:aws:iam::${ACCOUNT}:role/worker`, RoleSessionName: 'job' },
      output: {
        Credentials: { AccessKeyId: 'ASIAEXAMPLE000000000', SecretAccessKey: 'SECRET-ACCESS-KEY', SessionToken: 'SESSION-TOKEN', Expiration: new Date() },
        AssumedRoleUser: { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/worker/job`, AssumedRoleId: 'AROAEXAMPLEEXAMPLE000:job' },
      },
    });
    assert.doesNotMatch(entry.text, /SECRET-ACCESS-KEY|SESSION-TOKEN/);
    assert.match(entry.text, /ASIAEXAMPLE000000000/);
    const created = await build({
      eventSource: 'iam.amazonaws.com',
      eventName: 'CreateAccessKey',
      input: { UserName: 'app' },
      output: { AccessKey: { UserName: 'app', AccessKeyId: 'AKIANEW0000000000000', SecretAccessKey: 'NEW-SECRET', Status: 'Active' } },
    });
    assert.doesNotMatch(created.entry.text, /NEW-SECRET/);
    const dataKey = await build({
      eventName: 'GenerateDataKeyPair',
      input: { KeyId: KEY_ID, KeyPairSpec: 'ECC_NIST_P256' },
      output: { PrivateKeyPlaintext: Buffer.from('PRIVATE'), PrivateKeyCiphertextBlob: Buffer.from('x'), PublicKey: Buffer.from('y'), KeyId: KEY_ARN },
    });
    assert.doesNotMatch(dataKey.entry.text, /PRIVATE|UFJJVkFURQ/);
  });

  test('policy documents and grant constraint values are left out', async () => {
    const { entry, event } = await build({
      eventName: 'CreateGrant',
      input: {
        KeyId: KEY_ID,
        GranteePrincipal: `arn:aws:iam::${ACCOUNT}:user/app`,
        Operations: ['Decrypt'],
        Constraints: { EncryptionContextSubset: { tenant: 'POLICY-VALUE' } },
      },
    });
    assert.deepEqual(event.requestParameters.constraints, { encryptionContextSubset: { tenant: REDACTED } });
    const policy = await build({ eventName: 'PutKeyPolicy', input: { KeyId: KEY_ID, Policy: '{"POLICY-TEXT": 1}' } });
    assert.doesNotMatch(entry.text + policy.entry.text, /POLICY-VALUE|POLICY-TEXT/);
  });

  test('failures carry the error; unauthenticated requests an Unknown identity', async () => {
    const { entry, event } = await build({ caller: undefined, eventName: 'Unknown', error: new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.') });
    assert.equal(event.userIdentity.type, 'Unknown');
    assert.equal(event.errorCode, 'UnrecognizedClientException');
    assert.equal(event.responseElements, null);
    assert.equal(entry.cryptoSuccess, false);
  });

  test('an assumed-role session names its role as the session issuer', async () => {
    const { event } = await build({
      caller: { principalArn: `arn:aws:sts::${ACCOUNT}:assumed-role/worker/job`, accessKeyId: 'ASIAEXAMPLE000000000', decisions: [] },
    });
    assert.equal(event.userIdentity.type, 'AssumedRole');
    assert.equal(event.userIdentity.principalId, 'AROAEXAMPLEEXAMPLE000:job');
    assert.equal(event.userIdentity.sessionContext.sessionIssuer.arn, `arn:aws:iam::${ACCOUNT}:role/worker`);
  });

  test('the identity is the principal the authorization read for the request, without reading it again', async () => {
    const storeless = { ...context, store: { getPrincipal: async () => assert.fail('a second principal read') } } as unknown as ServiceContext;
    const caller = {
      principalArn: `arn:aws:iam::${ACCOUNT}:user/app`,
      accessKeyId: 'AKIAEXAMPLE000000000',
      decisions: [],
      principal: { arn: `arn:aws:iam::${ACCOUNT}:user/app`, kind: 'user', name: 'app', principalId: 'AIDAREADBYAUTHZ000000', createdAt: new Date(), tags: [] },
    } as AuditRequest['caller'];
    const event = JSON.parse((await buildRequestEvent(storeless, request({ caller }), { encryptionContextValues: false })).text);
    assert.equal(event.userIdentity.principalId, 'AIDAREADBYAUTHZ000000');
    assert.equal(event.userIdentity.userName, 'app');
    // Authorization found no principal (deleted meanwhile): the event says so, still without a read.
    const gone = JSON.parse((await buildRequestEvent(storeless, request({ caller: { ...caller!, principal: null } }), { encryptionContextValues: false })).text);
    assert.equal(gone.userIdentity.type, 'IAMUser');
    assert.equal(gone.userIdentity.principalId, undefined);
    assert.equal(gone.userIdentity.userName, undefined);
  });

  test('a request that never reached an authorization reads its principal for the identity', async () => {
    const { event } = await build({ caller: { principalArn: `arn:aws:iam::${ACCOUNT}:user/app`, accessKeyId: 'AKIAEXAMPLE000000000', decisions: [] } });
    assert.equal(event.userIdentity.principalId, 'AIDAEXAMPLEEXAMPLE000');
    assert.equal(event.userIdentity.userName, 'app');
  });

  test('background actions are service events on the key', () => {
    const entry = buildServiceEvent(context, 'DeleteKey', KEY_ID, new Date('2026-11-29T12:00:00Z'));
    const event = JSON.parse(entry.text);
    assert.equal(event.eventType, 'AwsServiceEvent');
    assert.equal(event.userIdentity.type, 'AWSService');
    assert.deepEqual(event.resources, [{ accountId: ACCOUNT, type: 'AWS::KMS::Key', ARN: KEY_ARN }]);
    assert.deepEqual(entry.keyIds, [KEY_ID]);
  });
});
