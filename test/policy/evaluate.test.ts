import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate } from '../../src/policy/evaluate.ts';
import { ACCOUNT_ID, baseRequest, loadCases, parsePolicies } from './policy-cases.ts';

const cases = loadCases();

describe('evaluate: table-driven cases', () => {
  it('loads a non-trivial table', () => {
    assert.ok(cases.length > 100, `only ${cases.length} cases`);
  });
  for (const policyCase of cases) {
    it(`${policyCase.file}: ${policyCase.name}`, () => {
      const result = evaluate(policyCase.request, parsePolicies(policyCase.raw));
      assert.equal(result.decision, policyCase.expected, result.reasons.join('\n'));
      assert.ok(result.reasons.length > 0, 'every decision carries a reason');
      if (result.decision === 'implicit-deny') assert.deepEqual(result.matched, []);
      else assert.ok(result.matched.length > 0, 'allow and explicit deny name the statements that decided');
    });
  }
});

const keyPolicy = (statement: object) => ({
  Version: '2012-10-17',
  Statement: [
    { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` }, Action: 'kms:*', Resource: '*' },
    statement,
  ],
});

describe('evaluate: matched statements and reasons', () => {
  it('names the key policy and identity policy statements of a delegated allow', () => {
    const policies = parsePolicies({
      keyPolicy: keyPolicy({ Sid: 'Nothing', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: 'kms:Sign', Resource: '*' }),
      identityPolicies: [{ name: 'app-policy', policy: { Version: '2012-10-17', Statement: [{ Sid: 'Use', Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }] } }],
    });
    const result = evaluate(baseRequest(), policies);
    assert.equal(result.decision, 'allow');
    assert.deepEqual(result.matched, [
      { policy: 'key-policy', sid: 'Root', index: 0, effect: 'Allow' },
      { policy: 'app-policy', sid: 'Use', index: 0, effect: 'Allow' },
    ]);
  });

  it('lists every applicable deny and only denies when explicitly denied', () => {
    const policies = parsePolicies({
      keyPolicy: keyPolicy({ Sid: 'NoEncrypt', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*' }),
      identityPolicies: [{ name: 'p', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:*', Resource: '*' }, { Effect: 'Allow', Action: '*', Resource: '*' }] } }],
    });
    const result = evaluate(baseRequest(), policies);
    assert.equal(result.decision, 'explicit-deny');
    assert.deepEqual(result.matched, [
      { policy: 'key-policy', sid: 'NoEncrypt', index: 1, effect: 'Deny' },
      { policy: 'p', index: 0, effect: 'Deny' },
    ]);
  });

  it('names the failed condition operator and key but never the encryption context value', () => {
    const secret = 'correct-horse-battery-staple';
    const policies = parsePolicies({
      keyPolicy: {
        Version: '2012-10-17',
        Statement: [{
          Sid: 'Tagged', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:user/alice' }, Action: 'kms:Encrypt', Resource: '*',
          Condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'backup' } },
        }],
      },
      identityPolicies: [],
    });
    const result = evaluate(baseRequest({ context: { 'kms:EncryptionContext:purpose': secret } }), policies);
    assert.equal(result.decision, 'implicit-deny');
    const text = result.reasons.join('\n');
    assert.match(text, /key-policy statement 0 \(Sid "Tagged"\).*StringEquals on kms:EncryptionContext:purpose/);
    assert.ok(!text.includes(secret), 'a context value leaked into the reasons');
    assert.ok(!JSON.stringify(result).includes(secret));
  });

  it('explains that the key policy delegates but no identity policy allows', () => {
    const policies = parsePolicies({ keyPolicy: keyPolicy({ Effect: 'Allow', Principal: '*', Action: 'kms:Sign', Resource: '*' }), identityPolicies: [] });
    const result = evaluate(baseRequest(), policies);
    assert.equal(result.decision, 'implicit-deny');
    assert.match(result.reasons.join('\n'), /delegates to the caller's account, but no identity policy allows/);
  });

  it('explains that an identity policy allowing is not enough without key policy delegation', () => {
    const policies = parsePolicies({
      keyPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:user/bob' }, Action: 'kms:*', Resource: '*' }] },
      identityPolicies: [{ name: 'p', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] } }],
    });
    const result = evaluate(baseRequest(), policies);
    assert.equal(result.decision, 'implicit-deny');
    assert.match(result.reasons.join('\n'), /identity policy allows the request, but the key policy does not delegate/);
  });
});
