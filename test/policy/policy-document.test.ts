import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyDocument, type PolicyKind } from '../../src/policy/policy-document.ts';

const statement = { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*', Resource: '*' };
const policyWith = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const without = (key: string) => Object.fromEntries(Object.entries(statement).filter(([k]) => k !== key));

const malformed: { title: string; document: string; kind?: PolicyKind; problem: RegExp }[] = [
  { title: 'rejects text that is not JSON', document: '{"Statement": [', problem: /not valid JSON/ },
  { title: 'rejects a JSON array', document: '[]', problem: /must be a JSON object/ },
  { title: 'rejects JSON null', document: 'null', problem: /must be a JSON object/ },
  { title: 'rejects an unsupported Version', document: JSON.stringify({ Version: '2020-01-01', Statement: statement }), problem: /Version/ },
  { title: 'rejects an unknown top-level element', document: JSON.stringify({ Statement: statement, Extra: 1 }), problem: /unknown top-level/ },
  { title: 'rejects a missing Statement', document: JSON.stringify({ Version: '2012-10-17' }), problem: /no Statement/ },
  { title: 'rejects an empty Statement array', document: policyWith(), problem: /no Statement/ },
  { title: 'rejects a Statement that is a string', document: JSON.stringify({ Statement: ['x'] }), problem: /Statement 0 must be an object/ },
  { title: 'rejects an Effect other than Allow or Deny', document: policyWith({ ...statement, Effect: 'allow' }), problem: /Effect/ },
  { title: 'rejects a statement with neither Action nor NotAction', document: policyWith(without('Action')), problem: /Action or NotAction/ },
  { title: 'rejects both Action and NotAction', document: policyWith({ ...statement, NotAction: 'kms:Decrypt' }), problem: /both Action and NotAction/ },
  { title: 'rejects a statement without Resource', document: policyWith(without('Resource')), problem: /Resource or NotResource/ },
  { title: 'rejects both Resource and NotResource', document: policyWith({ ...statement, NotResource: '*' }), problem: /both Resource and NotResource/ },
  { title: 'rejects a key policy statement without Principal', document: policyWith(without('Principal')), problem: /Principal or NotPrincipal/ },
  { title: 'rejects both Principal and NotPrincipal', document: policyWith({ ...statement, NotPrincipal: '*' }), problem: /both Principal and NotPrincipal/ },
  { title: 'rejects a Principal in an identity policy', document: policyWith(statement), kind: 'identity', problem: /identity policy/ },
  { title: 'rejects an unknown statement element', document: policyWith({ ...statement, Actions: 'kms:*' }), problem: /unknown element/ },
  { title: 'rejects a non-string Sid', document: policyWith({ ...statement, Sid: 7 }), problem: /Sid must be a string/ },
  { title: 'rejects duplicate Sids', document: policyWith({ ...statement, Sid: 'A' }, { ...statement, Sid: 'A' }), problem: /repeats the Sid/ },
  { title: 'rejects an empty Action array', document: policyWith({ ...statement, Action: [] }), problem: /Action must be a string or a non-empty array/ },
  { title: 'rejects a non-string Action entry', document: policyWith({ ...statement, Action: ['kms:Encrypt', 3] }), problem: /Action must be a string/ },
  { title: 'rejects an action without a service prefix', document: policyWith({ ...statement, Action: 'Encrypt' }), problem: /service:Action/ },
  { title: 'rejects a Resource that is neither * nor an ARN', document: policyWith({ ...statement, Resource: 'key/1' }), problem: /"\*" or an ARN/ },
  { title: 'rejects a Principal string other than *', document: policyWith({ ...statement, Principal: 'arn:aws:iam::111122223333:root' }), problem: /Principal must be "\*"/ },
  { title: 'rejects an unknown principal type', document: policyWith({ ...statement, Principal: { User: 'x' } }), problem: /unsupported principal type/ },
  { title: 'rejects an empty principal list', document: policyWith({ ...statement, Principal: { AWS: [] } }), problem: /AWS must be a string or a non-empty array/ },
  { title: 'rejects a Condition that is not an object', document: policyWith({ ...statement, Condition: 'x' }), problem: /Condition must be an object/ },
  { title: 'rejects an unknown condition operator', document: policyWith({ ...statement, Condition: { StringEqual: { 'aws:SourceIp': 'x' } } }), problem: /unsupported operator/ },
  { title: 'rejects an unknown set qualifier', document: policyWith({ ...statement, Condition: { 'ForSomeValues:StringEquals': { k: 'x' } } }), problem: /unsupported operator/ },
  { title: 'rejects NullIfExists', document: policyWith({ ...statement, Condition: { NullIfExists: { k: 'true' } } }), problem: /unsupported operator/ },
  { title: 'rejects an operator block that is not an object', document: policyWith({ ...statement, Condition: { StringEquals: ['x'] } }), problem: /must map condition keys/ },
  { title: 'rejects a condition value that is an object', document: policyWith({ ...statement, Condition: { StringEquals: { k: { v: 1 } } } }), problem: /needs a string, number, boolean/ },
  { title: 'rejects an empty condition value array', document: policyWith({ ...statement, Condition: { StringEquals: { k: [] } } }), problem: /needs a string, number, boolean/ },
];

describe('parsePolicyDocument: malformed documents', () => {
  for (const { title, document, kind, problem } of malformed) {
    it(title, () => {
      const result = parsePolicyDocument(document, kind ?? 'key');
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.problems.some((p) => problem.test(p)), JSON.stringify(!result.ok && result.problems));
    });
  }

  it('reports every problem, not only the first', () => {
    const result = parsePolicyDocument(policyWith({ ...statement, Effect: 'Maybe' }, without('Action')), 'key');
    assert.ok(!result.ok && result.problems.length === 2, JSON.stringify(result));
  });

  it('never echoes policy text in a problem', () => {
    const secret = 'secret-context-value-123';
    const result = parsePolicyDocument(policyWith({ ...statement, Condition: { [secret]: { [secret]: secret } } }), 'key');
    assert.ok(!result.ok && !result.problems.join(' ').includes(secret));
  });

  it('never throws on deeply odd input', () => {
    for (const document of ['', '1', '"x"', 'true', '{"Statement":null}', '{"Statement":{}}', '{"Statement":[null]}', '{"__proto__":{}}']) {
      assert.doesNotThrow(() => parsePolicyDocument(document, 'key'));
      assert.equal(parsePolicyDocument(document, 'key').ok, false);
    }
  });
});

describe('parsePolicyDocument: normalisation', () => {
  it('normalises a single Statement object and scalar elements to lists', () => {
    const result = parsePolicyDocument(JSON.stringify({ Version: '2012-10-17', Id: 'k', Statement: { ...statement, Sid: 'One' } }), 'key');
    assert.ok(result.ok);
    assert.deepEqual(result.policy, {
      version: '2012-10-17',
      id: 'k',
      statements: [{
        index: 0, sid: 'One', effect: 'Allow',
        principal: { kind: 'listed', aws: ['arn:aws:iam::111122223333:root'], service: [], federated: [], canonicalUser: [] },
        notPrincipal: undefined, action: ['kms:*'], resource: ['*'], conditions: [],
      }],
    });
  });

  it('keeps Service and Federated principals as data and treats AWS "*" as anyone', () => {
    const result = parsePolicyDocument(policyWith(
      { ...statement, Principal: { Service: ['logs.amazonaws.com'], Federated: 'cognito-identity.amazonaws.com' } },
      { ...statement, Principal: { AWS: ['*'] } },
    ), 'key');
    assert.ok(result.ok);
    assert.deepEqual(result.policy.statements[0].principal, { kind: 'listed', aws: [], service: ['logs.amazonaws.com'], federated: ['cognito-identity.amazonaws.com'], canonicalUser: [] });
    assert.deepEqual(result.policy.statements[1].principal, { kind: 'anyone' });
  });

  it('splits condition operators and stringifies values', () => {
    const result = parsePolicyDocument(policyWith({
      ...statement,
      Condition: { 'ForAllValues:StringLikeIfExists': { 'kms:EncryptionContextKeys': ['a*', 'b'] }, Bool: { 'aws:SecureTransport': true }, NumericLessThan: { 'aws:MultiFactorAuthAge': 60 } },
    }), 'key');
    assert.ok(result.ok);
    assert.deepEqual(result.policy.statements[0].conditions, [
      { operator: 'ForAllValues:StringLikeIfExists', base: 'StringLike', qualifier: 'ForAllValues', ifExists: true, key: 'kms:EncryptionContextKeys', values: ['a*', 'b'] },
      { operator: 'Bool', base: 'Bool', qualifier: undefined, ifExists: false, key: 'aws:SecureTransport', values: ['true'] },
      { operator: 'NumericLessThan', base: 'NumericLessThan', qualifier: undefined, ifExists: false, key: 'aws:MultiFactorAuthAge', values: ['60'] },
    ]);
  });

  it('accepts an identity policy without Principal and the 2008 Version', () => {
    const result = parsePolicyDocument(JSON.stringify({ Version: '2008-10-17', Statement: [without('Principal')] }), 'identity');
    assert.ok(result.ok);
  });
});
