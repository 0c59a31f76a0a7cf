/**
 * The one template builder says what the issue asks of every object, and what SoftHSMv2 does
 * with those attributes is pinned down against a real token (documented in templates.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { returnValueOf } from '../../src/keystores/pkcs11/errors.ts';
import { Pkcs11Module, type Handle } from '../../src/keystores/pkcs11/module.ts';
import { newObjectId } from '../../src/keystores/pkcs11/reference.ts';
import {
  clusterKeyVersionTemplate,
  expectedBooleanAttributes,
  forUnwrap,
  keyVersionLabel,
  keyVersionTemplate,
  rootKeyTemplate,
  transportKeyPairTemplates,
  unwrappedKeyVersionAttributes,
  wrappingKeyTemplate,
  type TemplateAttribute,
} from '../../src/keystores/pkcs11/templates.ts';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from './softhsm.ts';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

function valueOf(template: readonly TemplateAttribute[], type: number): unknown {
  const matches = template.filter((attribute) => attribute.type === type);
  assert.equal(matches.length, 1, `attribute 0x${type.toString(16)} appears exactly once`);
  return matches[0].value;
}

const P = pkcs11js;

describe('keyVersionTemplate', () => {
  const objectId = newObjectId(KEY_ID, 3);
  const template = keyVersionTemplate({ keyId: KEY_ID, version: 3, objectId });

  test('an AES-256 secret key, a private token object', () => {
    assert.equal(valueOf(template, P.CKA_CLASS), P.CKO_SECRET_KEY);
    assert.equal(valueOf(template, P.CKA_KEY_TYPE), P.CKK_AES);
    assert.equal(valueOf(template, P.CKA_VALUE_LEN), 32);
    assert.equal(valueOf(template, P.CKA_TOKEN), true);
    assert.equal(valueOf(template, P.CKA_PRIVATE), true);
  });

  test('sensitive, non-extractable, wrap-with-trusted, not trusted itself', () => {
    assert.equal(valueOf(template, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(template, P.CKA_EXTRACTABLE), false);
    assert.equal(valueOf(template, P.CKA_WRAP_WITH_TRUSTED), true);
    assert.equal(valueOf(template, P.CKA_TRUSTED), false);
  });

  test('encrypts and decrypts, and nothing else', () => {
    assert.equal(valueOf(template, P.CKA_ENCRYPT), true);
    assert.equal(valueOf(template, P.CKA_DECRYPT), true);
    for (const type of [P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_SIGN, P.CKA_VERIFY, P.CKA_DERIVE]) {
      assert.equal(valueOf(template, type), false, `0x${type.toString(16)}`);
    }
  });

  test('cannot be copied or modified, can be destroyed', () => {
    assert.equal(valueOf(template, P.CKA_COPYABLE), false);
    assert.equal(valueOf(template, P.CKA_MODIFIABLE), false);
    assert.equal(valueOf(template, P.CKA_DESTROYABLE), true);
  });

  test('label and id come from the key id and version', () => {
    assert.equal(valueOf(template, P.CKA_LABEL), `strongroom:${KEY_ID}:v3`);
    assert.equal(keyVersionLabel(KEY_ID, 3), `strongroom:${KEY_ID}:v3`);
    const id = valueOf(template, P.CKA_ID) as Buffer;
    assert.deepEqual(id, objectId);
    assert.equal(id.subarray(0, 16).toString('hex'), KEY_ID.replaceAll('-', ''));
    assert.equal(id.readUInt32BE(16), 3);
    assert.equal(id.length, 28);
    assert.notDeepEqual(newObjectId(KEY_ID, 3), objectId, 'a random tail makes every CKA_ID unique');
  });

  test('exportable only to a trusted wrapping key when asked, and still sensitive', () => {
    const exportable = keyVersionTemplate({ keyId: KEY_ID, version: 3, objectId, exportableToTrustedWrappingKey: true });
    assert.equal(valueOf(exportable, P.CKA_EXTRACTABLE), true);
    assert.equal(valueOf(exportable, P.CKA_WRAP_WITH_TRUSTED), true);
    assert.equal(valueOf(exportable, P.CKA_SENSITIVE), true);
  });

  test('the read-back check expects what only the token sets', () => {
    const expected = new Map(expectedBooleanAttributes(template).map(({ type, value }) => [type, value]));
    assert.equal(expected.get(P.CKA_LOCAL), true);
    assert.equal(expected.get(P.CKA_ALWAYS_SENSITIVE), true);
    assert.equal(expected.get(P.CKA_NEVER_EXTRACTABLE), true);
    assert.equal(expected.get(P.CKA_SENSITIVE), true);
    assert.equal(expected.get(P.CKA_EXTRACTABLE), false);
    const exportable = keyVersionTemplate({ keyId: KEY_ID, version: 3, objectId, exportableToTrustedWrappingKey: true });
    assert.equal(new Map(expectedBooleanAttributes(exportable).map(({ type, value }) => [type, value])).get(P.CKA_NEVER_EXTRACTABLE), false);
  });
});

describe('wrappingKeyTemplate', () => {
  const objectId = Buffer.from('cluster-wrapping-key');

  test('wraps and unwraps, and nothing else; sensitive, non-extractable, wrap-with-trusted', () => {
    const template = wrappingKeyTemplate({ label: 'cwk', objectId, trusted: false });
    assert.equal(valueOf(template, P.CKA_WRAP), true);
    assert.equal(valueOf(template, P.CKA_UNWRAP), true);
    for (const type of [P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_VERIFY, P.CKA_DERIVE]) {
      assert.equal(valueOf(template, type), false, `0x${type.toString(16)}`);
    }
    assert.equal(valueOf(template, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(template, P.CKA_EXTRACTABLE), false);
    assert.equal(valueOf(template, P.CKA_WRAP_WITH_TRUSTED), true);
    assert.equal(valueOf(template, P.CKA_TRUSTED), false);
    assert.equal(valueOf(template, P.CKA_PRIVATE), true);
    assert.equal(valueOf(template, P.CKA_LABEL), 'cwk');
  });

  test('trusted: CKA_TRUSTED, and a public object (what an SO session can make in SoftHSM)', () => {
    const template = wrappingKeyTemplate({ label: 'cwk', objectId, trusted: true });
    assert.equal(valueOf(template, P.CKA_TRUSTED), true);
    assert.equal(valueOf(template, P.CKA_PRIVATE), false);
    assert.equal(valueOf(template, P.CKA_SENSITIVE), true);
  });
});

describe('templates that keep wrapped keys sensitive', () => {
  const objectId = Buffer.from('cluster-wrapping-key');
  const template = wrappingKeyTemplate({ label: 'cwk', objectId, trusted: true, exportableToTrustedWrappingKey: true });

  test('a wrapping key carries a wrap and an unwrap template, and CKA_MODIFIABLE false comes last', () => {
    const wrap = valueOf(template, P.CKA_WRAP_TEMPLATE) as TemplateAttribute[];
    assert.equal(valueOf(wrap, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(wrap, P.CKA_WRAP_WITH_TRUSTED), true);
    assert.equal(valueOf(wrap, P.CKA_WRAP), false, 'never a wrapping key, so never itself');
    assert.equal(valueOf(wrap, P.CKA_TRUSTED), false);
    const unwrap = valueOf(template, P.CKA_UNWRAP_TEMPLATE) as TemplateAttribute[];
    assert.equal(valueOf(unwrap, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(unwrap, P.CKA_EXTRACTABLE), true);
    assert.equal(valueOf(unwrap, P.CKA_WRAP_WITH_TRUSTED), true);
    assert.equal(valueOf(unwrap, P.CKA_MODIFIABLE), false);
    assert.deepEqual(template.at(-1), { type: P.CKA_MODIFIABLE, value: false });
  });

  test('the unwrap template asks exactly what replication passes to C_UnwrapKey', () => {
    const replica = forUnwrap(clusterKeyVersionTemplate('strongroom:k:v1', newObjectId(KEY_ID, 1)));
    for (const { type, value } of unwrappedKeyVersionAttributes()) assert.equal(valueOf(replica, type), value, `0x${type.toString(16)}`);
    assert.deepEqual(replica.at(-1), { type: P.CKA_MODIFIABLE, value: false }, 'last, or SoftHSM refuses what follows it');
  });

  test("the transport private key unwraps only into a trusted cluster key, and cannot be modified", () => {
    const { privateKey } = transportKeyPairTemplates('t', Buffer.from('t'));
    const unwrap = valueOf(privateKey, P.CKA_UNWRAP_TEMPLATE) as TemplateAttribute[];
    assert.equal(valueOf(unwrap, P.CKA_TRUSTED), true, 'only an SO session may set it');
    assert.equal(valueOf(unwrap, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(unwrap, P.CKA_DECRYPT), false);
    assert.ok(!unwrap.some((attribute) => Array.isArray(attribute.value)), 'templates may not nest');
    assert.equal(valueOf(privateKey, P.CKA_DECRYPT), false);
    assert.deepEqual(privateKey.at(-1), { type: P.CKA_MODIFIABLE, value: false });
  });

  test('the root key: encrypt/decrypt only, never extractable, unmodifiable, no CKA_ID', () => {
    const root = rootKeyTemplate('strongroom-root');
    assert.equal(valueOf(root, P.CKA_EXTRACTABLE), false);
    assert.equal(valueOf(root, P.CKA_SENSITIVE), true);
    assert.equal(valueOf(root, P.CKA_MODIFIABLE), false);
    assert.equal(valueOf(root, P.CKA_ENCRYPT), true);
    assert.equal(valueOf(root, P.CKA_WRAP), false);
    assert.equal(root.filter((attribute) => attribute.type === P.CKA_ID).length, 0);
  });
});

describe('what SoftHSMv2 does with these templates', () => {
  let token: TestToken;
  let module: Pkcs11Module;
  let slot: Handle;
  const sessions: Handle[] = [];

  before(() => {
    token = SoftHsm.get().createToken('templates');
    module = Pkcs11Module.open(SOFTHSM_MODULE);
    slot = module.findSlot({ tokenLabel: token.label });
  });
  after(() => {
    for (const session of sessions) module.api.C_CloseSession(session);
    module.close();
  });

  const open = (): Handle => {
    const session = module.api.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    sessions.push(session);
    return session;
  };
  const rvOf = (run: () => unknown): string => {
    try {
      run();
      return 'CKR_OK';
    } catch (error) {
      return `0x${(returnValueOf(error) ?? -1).toString(16)}`;
    }
  };
  const generate = (session: Handle, template: TemplateAttribute[]) =>
    module.api.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, template);

  test('an SO session makes a trusted wrapping key; a user session may not ask for CKA_TRUSTED', () => {
    const so = open();
    module.api.C_Login(so, P.CKU_SO, token.soPin);
    const trusted = generate(so, wrappingKeyTemplate({ label: 'cwk', objectId: Buffer.from('cwk'), trusted: true }));
    assert.ok(trusted);
    // An SO cannot make private objects: CKR_USER_NOT_LOGGED_IN.
    const privateTrusted = wrappingKeyTemplate({ label: 'x', objectId: Buffer.from('x'), trusted: true }).map((attribute) =>
      attribute.type === P.CKA_PRIVATE ? { type: P.CKA_PRIVATE, value: true } : attribute,
    );
    assert.equal(rvOf(() => generate(so, privateTrusted)), '0x101');
    module.api.C_Logout(so);

    const user = open();
    module.api.C_Login(user, P.CKU_USER, token.pin);
    // CKR_ATTRIBUTE_READ_ONLY
    assert.equal(rvOf(() => generate(user, wrappingKeyTemplate({ label: 'y', objectId: Buffer.from('y'), trusted: true }))), '0x10');
    assert.ok(generate(user, wrappingKeyTemplate({ label: 'z', objectId: Buffer.from('z'), trusted: false })));
  });

  test('the patched binding passes a template as an attribute value, and SoftHSM keeps and reports it', () => {
    assert.equal(P.STRONGROOM_NESTED_TEMPLATES, 1, 'pkcs11js carries patches/pkcs11js+2.1.7.patch');
    const user = sessions.at(-1)!;
    const unwrapTemplate = [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_LABEL, value: 'inner' },
    ];
    // Modifiable here, so that what refuses the change below is the template attribute itself.
    const key = generate(user, [
      ...wrappingKeyTemplate({ label: 'templated', objectId: Buffer.from('templated'), trusted: false }).filter(
        (attribute) => !Array.isArray(attribute.value) && attribute.type !== P.CKA_MODIFIABLE,
      ),
      { type: P.CKA_UNWRAP_TEMPLATE, value: unwrapTemplate },
    ]);
    // The token fills in each CK_ATTRIBUTE's type and length (24-byte structs on LP64), not the values.
    const [read] = module.api.C_GetAttributeValue(user, key, [{ type: P.CKA_UNWRAP_TEMPLATE }]);
    const raw = read!.value as Buffer;
    assert.equal(raw.length, 3 * 24);
    const types = [0, 1, 2].map((index) => Number(raw.readBigUInt64LE(index * 24))).sort((a, b) => a - b);
    assert.deepEqual(types, [P.CKA_CLASS, P.CKA_LABEL, P.CKA_SENSITIVE].sort((a, b) => a - b));
    // Set once, at creation (§4.7): CKR_ATTRIBUTE_READ_ONLY afterwards.
    assert.equal(rvOf(() => module.api.C_SetAttributeValue(user, key, [{ type: P.CKA_UNWRAP_TEMPLATE, value: [] }])), '0x10');
  });

  test('the patched binding refuses an array for a plain attribute and a template inside a template', () => {
    const user = sessions.at(-1)!;
    const base = wrappingKeyTemplate({ label: 'refused', objectId: Buffer.from('refused'), trusted: false }).filter((attribute) => !Array.isArray(attribute.value));
    assert.throws(() => generate(user, [...base.filter((attribute) => attribute.type !== P.CKA_LABEL), { type: P.CKA_LABEL, value: [] }]), TypeError);
    const nested = { type: P.CKA_UNWRAP_TEMPLATE, value: [{ type: P.CKA_WRAP_TEMPLATE, value: [{ type: P.CKA_SENSITIVE, value: true }] }] };
    assert.throws(() => generate(user, [...base, nested]), TypeError);
  });

  test('wrap rules: non-extractable never; wrap-with-trusted only under a trusted key', () => {
    const user = sessions.at(-1)!;
    const find = (label: string) => {
      module.api.C_FindObjectsInit(user, [{ type: P.CKA_LABEL, value: label }]);
      const [found] = module.api.C_FindObjects(user, 1);
      module.api.C_FindObjectsFinal(user);
      return found;
    };
    const trustedKey = find('cwk');
    const untrustedKey = find('z');
    const sealed = generate(user, keyVersionTemplate({ keyId: KEY_ID, version: 1, objectId: newObjectId(KEY_ID, 1) }));
    const exportable = generate(
      user,
      keyVersionTemplate({ keyId: KEY_ID, version: 2, objectId: newObjectId(KEY_ID, 2), exportableToTrustedWrappingKey: true }),
    );
    const wrap = (wrapping: Handle, key: Handle) =>
      rvOf(() => module.api.C_WrapKey(user, { mechanism: P.CKM_AES_KEY_WRAP }, wrapping, key, Buffer.alloc(64)));
    assert.equal(wrap(trustedKey, sealed), '0x6a', 'CKR_KEY_UNEXTRACTABLE');
    assert.equal(wrap(untrustedKey, exportable), '0x69', 'CKR_KEY_NOT_WRAPPABLE');
    assert.equal(wrap(trustedKey, exportable), 'CKR_OK');
    // Neither key's value can be read.
    for (const key of [sealed, exportable]) {
      assert.equal(rvOf(() => module.api.C_GetAttributeValue(user, key, [{ type: P.CKA_VALUE }])), '0x11', 'CKR_ATTRIBUTE_SENSITIVE');
    }
    // The protections are one-way: CKR_ACTION_PROHIBITED (CKA_MODIFIABLE false) for any change.
    assert.equal(rvOf(() => module.api.C_SetAttributeValue(user, exportable, [{ type: P.CKA_WRAP_WITH_TRUSTED, value: false }])), '0x1b');
    assert.equal(rvOf(() => module.api.C_SetAttributeValue(user, sealed, [{ type: P.CKA_LABEL, value: 'renamed' }])), '0x1b');
    assert.equal(rvOf(() => module.api.C_CopyObject(user, sealed, [])), '0x1b');
  });
});
