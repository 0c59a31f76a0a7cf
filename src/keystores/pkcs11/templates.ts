import pkcs11js from 'pkcs11js';

/**
 * The one builder of PKCS#11 object templates. Every key object Strongroom asks a token to make
 * comes from here, so its protection is decided in one place: sensitive, non-extractable, and
 * wrap-with-trusted, whatever the token's defaults (which are token-specific: SoftHSMv2 2.6.1,
 * for one, gives a secret key CKA_SIGN/CKA_VERIFY true unless told otherwise).
 *
 * Every boolean attribute the spec lets a token default is stated explicitly. Attribute rules are
 * PKCS#11 v2.40 §4.4 (storage objects), §4.7 (key objects) and §4.10 (secret key objects).
 *
 * What SoftHSMv2 2.6.1 allows (measured against it, see test/keystores/pkcs11-templates.test.ts
 * and docs/design.md):
 * - CKA_TRUSTED = true only in an SO session (§4.10, footnote: "can only be set to CK_TRUE by the
 *   SO user"); a user session gets CKR_ATTRIBUTE_READ_ONLY, at creation and by C_SetAttributeValue.
 * - An SO session can create public objects only: CKA_PRIVATE = true gives CKR_USER_NOT_LOGGED_IN.
 *   So a trusted wrapping key is a public token object (usable, never readable: it is sensitive).
 * - CKA_WRAP_WITH_TRUSTED, CKA_SENSITIVE: once true, read-only (§4.10). CKA_EXTRACTABLE: once
 *   false, read-only. CKA_COPYABLE = false and CKA_MODIFIABLE = false are honoured
 *   (CKR_ACTION_PROHIBITED); neither stops C_DestroyObject (CKA_DESTROYABLE stays true).
 * - A key with CKA_EXTRACTABLE = false cannot be wrapped at all (CKR_KEY_UNEXTRACTABLE, §5.14
 *   C_WrapKey); with CKA_EXTRACTABLE = true and CKA_WRAP_WITH_TRUSTED = true only a CKA_TRUSTED
 *   key may wrap it (CKR_KEY_NOT_WRAPPABLE otherwise).
 * - CKA_UNWRAP_TEMPLATE (§4.7, §5.14 C_UnwrapKey) is enforced: every attribute it names must be
 *   in the caller's C_UnwrapKey template with the same value, else CKR_TEMPLATE_INCONSISTENT.
 *   CKA_WRAP_TEMPLATE is enforced in C_WrapKey: the key to wrap must carry every attribute it
 *   names, else CKR_KEY_NOT_WRAPPABLE. Both can be set only when the object is made (C_GenerateKey,
 *   C_UnwrapKey, C_CreateObject), never by C_SetAttributeValue (CKR_ATTRIBUTE_READ_ONLY), and may
 *   not nest. pkcs11js 2.1.7 cannot pass them: patches/pkcs11js+2.1.7.patch adds array values.
 * - CKA_MODIFIABLE = false in C_UnwrapKey works only as the template's last attribute: SoftHSM
 *   applies attributes in order and refuses every one after it (CKR_ATTRIBUTE_READ_ONLY), so build()
 *   puts it last. A modifiable public object can have CKA_DECRYPT, CKA_WRAP … turned on by anyone
 *   who can open the token, PIN or not: a R/W public session may write public token objects
 *   (SoftHSM's access.cpp, after the spec's session/object access table).
 */

export type TemplateAttribute = pkcs11js.Attribute;

/**
 * Fails unless the loaded pkcs11js carries Strongroom's patch (postinstall,
 * scripts/patch-pkcs11js.mjs): without it a wrapping key could not get its wrap/unwrap templates,
 * and a crypto user could unwrap every KMS key as a readable object (docs/hsm-cluster.md).
 */
export function requireNestedTemplates(): void {
  if (pkcs11js.STRONGROOM_NESTED_TEMPLATES !== 1) {
    throw new Error('pkcs11js lacks nested-template support: run `npm ci` (its postinstall patches and rebuilds pkcs11js)');
  }
}

/** AES-256: the only secret key this store makes. */
export const AES_256_KEY_BYTES = 32;

/** CKA_LABEL of a KMS key version's object: what an operator sees in pkcs11-tool. */
export function keyVersionLabel(keyId: string, version: number): string {
  return `strongroom:${keyId}:v${version}`;
}

export interface KeyVersionTemplateArgs {
  readonly keyId: string;
  readonly version: number;
  /** CKA_ID: unique per object (see reference.ts), the store's lookup key. */
  readonly objectId: Buffer;
  /**
   * Let a CKA_TRUSTED wrapping key export the object (CKA_EXTRACTABLE = true, still
   * CKA_WRAP_WITH_TRUSTED). Off by default: the object then can never leave the token, not even
   * to another cluster member. The cluster's replication will need it on (see docs/design.md).
   */
  readonly exportableToTrustedWrappingKey?: boolean;
}

/**
 * An AES-256 secret key for one KMS key version: a private token object that encrypts and
 * decrypts and does nothing else.
 */
export function keyVersionTemplate(args: KeyVersionTemplateArgs): TemplateAttribute[] {
  return build({
    label: keyVersionLabel(args.keyId, args.version),
    objectId: args.objectId,
    private: true,
    trusted: false,
    extractable: args.exportableToTrustedWrappingKey === true,
    usage: { encrypt: true, decrypt: true, wrap: false, unwrap: false },
  });
}

export interface WrappingKeyTemplateArgs {
  readonly label: string;
  readonly objectId: Buffer;
  /**
   * CKA_TRUSTED = true: may wrap keys that are CKA_WRAP_WITH_TRUSTED. Needs an SO session, and
   * SoftHSM then forces a public object, so this also sets CKA_PRIVATE = false.
   */
  readonly trusted: boolean;
  /** So the ceremony can carry it to other members under a trusted transport key. Default false. */
  readonly exportableToTrustedWrappingKey?: boolean;
}

/**
 * A wrapping key: wraps and unwraps, nothing else, and only KMS key version objects. Its
 * CKA_WRAP_TEMPLATE lets it wrap only sensitive, wrap-with-trusted keys that wrap nothing (never a
 * wrapping key, itself included: a copy of it unwrapped as an encrypt/decrypt key would invert
 * RFC 3394 in the clear). Its CKA_UNWRAP_TEMPLATE makes whatever it unwraps a KMS key version object
 * exactly as generated: sensitive, exportable only under a trusted key, encrypt/decrypt only,
 * unmodifiable. So a crypto user who wraps a KMS key under it gets back only another sensitive copy.
 */
export function wrappingKeyTemplate(args: WrappingKeyTemplateArgs): TemplateAttribute[] {
  return build({
    label: args.label,
    objectId: args.objectId,
    private: !args.trusted,
    trusted: args.trusted,
    extractable: args.exportableToTrustedWrappingKey === true,
    usage: { encrypt: false, decrypt: false, wrap: true, unwrap: true },
    wrapTemplate: WRAPPABLE_KEY_VERSION,
    unwrapTemplate: unwrappedKeyVersionAttributes(),
  });
}

/** What a wrapping key may wrap (its CKA_WRAP_TEMPLATE): a protected key that wraps nothing. */
const WRAPPABLE_KEY_VERSION: readonly TemplateAttribute[] = [
  { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
  { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
  { type: pkcs11js.CKA_SENSITIVE, value: true },
  { type: pkcs11js.CKA_WRAP_WITH_TRUSTED, value: true },
  { type: pkcs11js.CKA_TRUSTED, value: false },
  { type: pkcs11js.CKA_WRAP, value: false },
  { type: pkcs11js.CKA_UNWRAP, value: false },
  { type: pkcs11js.CKA_DERIVE, value: false },
];

/**
 * What a wrapping key's C_UnwrapKey must be asked for (its CKA_UNWRAP_TEMPLATE): the class, key
 * type and every boolean of a cluster KMS key version object, from the same builder that the
 * replication's C_UnwrapKey uses (clusterKeyVersionTemplate), so the two cannot drift apart.
 */
export function unwrappedKeyVersionAttributes(): TemplateAttribute[] {
  return flatAttributes(clusterKeyVersionTemplate('', Buffer.alloc(0)));
}

/** CKA_CLASS, CKA_KEY_TYPE and the booleans of a template: what an unwrap template can pin. */
function flatAttributes(template: readonly TemplateAttribute[]): TemplateAttribute[] {
  return template.filter(
    (attribute) => typeof attribute.value === 'boolean' || attribute.type === pkcs11js.CKA_CLASS || attribute.type === pkcs11js.CKA_KEY_TYPE,
  );
}

interface ObjectPolicy {
  label: string;
  /** CKA_ID; the root key has none (it is found by label). */
  objectId: Buffer | undefined;
  private: boolean;
  trusted: boolean;
  extractable: boolean;
  usage: { encrypt: boolean; decrypt: boolean; wrap: boolean; unwrap: boolean };
  wrapTemplate?: readonly TemplateAttribute[];
  unwrapTemplate?: readonly TemplateAttribute[];
}

function build(policy: ObjectPolicy): TemplateAttribute[] {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: AES_256_KEY_BYTES },
    // §4.4: persistent, and (unless it must be an SO-made trusted key) visible only after login.
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: policy.private },
    { type: pkcs11js.CKA_COPYABLE, value: false },
    { type: pkcs11js.CKA_DESTROYABLE, value: true },
    { type: pkcs11js.CKA_LABEL, value: policy.label },
    // §4.7: CKA_ID is the application's handle for the object across sessions and tokens.
    ...(policy.objectId ? [{ type: pkcs11js.CKA_ID, value: Buffer.from(policy.objectId) }] : []),
    // §4.10: the value never leaves in the clear; wrapping, if allowed at all, needs a trusted key.
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: policy.extractable },
    { type: pkcs11js.CKA_WRAP_WITH_TRUSTED, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: policy.usage.encrypt },
    { type: pkcs11js.CKA_DECRYPT, value: policy.usage.decrypt },
    { type: pkcs11js.CKA_WRAP, value: policy.usage.wrap },
    { type: pkcs11js.CKA_UNWRAP, value: policy.usage.unwrap },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    // true only in an SO session (§4.10); false is accepted in a user session.
    { type: pkcs11js.CKA_TRUSTED, value: policy.trusted },
    // §4.7: fixed at creation. Copies, so no caller can alter the shared constants through a template.
    ...(policy.wrapTemplate ? [{ type: pkcs11js.CKA_WRAP_TEMPLATE, value: policy.wrapTemplate.map((attribute) => ({ ...attribute })) }] : []),
    ...(policy.unwrapTemplate ? [{ type: pkcs11js.CKA_UNWRAP_TEMPLATE, value: policy.unwrapTemplate.map((attribute) => ({ ...attribute })) }] : []),
    // Last: in C_UnwrapKey SoftHSM refuses every attribute after it (see the header).
    { type: pkcs11js.CKA_MODIFIABLE, value: false },
  ];
}

/**
 * The attributes a generated object must show afterwards, read back with C_GetAttributeValue: the
 * template's booleans plus what only the token sets (CKA_LOCAL, CKA_ALWAYS_SENSITIVE,
 * CKA_NEVER_EXTRACTABLE, §4.7/§4.10). A token that silently ignored part of the template is caught.
 */
export function expectedBooleanAttributes(template: readonly TemplateAttribute[]): Array<{ type: number; value: boolean }> {
  const expected = template
    .filter((attribute): attribute is { type: number; value: boolean } => typeof attribute.value === 'boolean')
    // CKA_MODIFIABLE/COPYABLE/DESTROYABLE are v2.40 additions some tokens do not report.
    .filter((attribute) => !OPTIONAL_READBACK.has(attribute.type));
  const extractable = template.find((attribute) => attribute.type === pkcs11js.CKA_EXTRACTABLE)?.value === true;
  expected.push(
    { type: pkcs11js.CKA_LOCAL, value: true },
    { type: pkcs11js.CKA_ALWAYS_SENSITIVE, value: true },
    { type: pkcs11js.CKA_NEVER_EXTRACTABLE, value: !extractable },
  );
  return expected;
}

const OPTIONAL_READBACK = new Set<number>([pkcs11js.CKA_MODIFIABLE, pkcs11js.CKA_COPYABLE, pkcs11js.CKA_DESTROYABLE]);

/**
 * A KMS key version's object in an HSM cluster member, generated or unwrapped: as
 * keyVersionTemplate with exportableToTrustedWrappingKey, so the cluster wrapping key (trusted)
 * can carry it to other members, and nothing else can (CKA_WRAP_WITH_TRUSTED). For C_UnwrapKey
 * the token sets CKA_LOCAL/ALWAYS_SENSITIVE/NEVER_EXTRACTABLE false itself (§4.10), so
 * those are not read back for replicas.
 */
export function clusterKeyVersionTemplate(label: string, objectId: Buffer): TemplateAttribute[] {
  return build({
    label,
    objectId,
    private: true,
    trusted: false,
    extractable: true,
    usage: { encrypt: true, decrypt: true, wrap: false, unwrap: false },
  });
}

/**
 * The template C_UnwrapKey takes: CKA_VALUE_LEN comes from the wrapped value itself (§5.14).
 * CKA_MODIFIABLE = false stays, as the last attribute (build()), so replicas are as unmodifiable
 * as the generated original.
 */
export function forUnwrap(template: readonly TemplateAttribute[]): TemplateAttribute[] {
  return template.filter((attribute) => attribute.type !== pkcs11js.CKA_VALUE_LEN);
}

/**
 * The cluster wrapping key in every member: trusted (so it may wrap the wrap-with-trusted KMS
 * objects), extractable only under another trusted key (the ceremony's transport key), wraps and
 * unwraps, nothing else. Made in an SO session, hence a public object (see the header).
 */
export function clusterWrappingKeyTemplate(label: string, objectId: Buffer): TemplateAttribute[] {
  return wrappingKeyTemplate({ label, objectId, trusted: true, exportableToTrustedWrappingKey: true });
}

/** RSA modulus of the ceremony's transport key pair: 3072 bits (SP 800-57 Pt. 1 §5.6.1: 128-bit strength). */
export const TRANSPORT_MODULUS_BITS = 3072;

/**
 * The joining member's transport key pair (ceremony.ts): a token object made in an SO session
 * (so, in SoftHSM, public: any session on the token can use it, PIN or not), the private half
 * sensitive, never extractable, unmodifiable (else CKA_DECRYPT could be turned on and OAEP(CWK)
 * decrypted), and only able to unwrap a cluster wrapping key: its CKA_UNWRAP_TEMPLATE asks for
 * CKA_TRUSTED = true, which only an SO session may set, so nobody but the SO can unwrap with it,
 * and what the SO unwraps is a CWK. It lives from beginJoin to completeJoin and is destroyed there.
 */
export function transportKeyPairTemplates(label: string, objectId: Buffer): { publicKey: TemplateAttribute[]; privateKey: TemplateAttribute[] } {
  const common: TemplateAttribute[] = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: Buffer.from(objectId) },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_COPYABLE, value: false },
  ];
  return {
    publicKey: [
      ...common,
      { type: pkcs11js.CKA_MODULUS_BITS, value: TRANSPORT_MODULUS_BITS },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
    ],
    privateKey: [
      ...common,
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_UNWRAP_TEMPLATE, value: flatAttributes(clusterWrappingKeyTemplate('', Buffer.alloc(0))) },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
    ],
  };
}

/**
 * The joining member's transport public key as imported into the source member: a session
 * object (gone with the SO session that made it), CKA_TRUSTED so it may wrap the cluster
 * wrapping key, able to wrap and nothing else, and (CKA_WRAP_TEMPLATE) only trusted keys.
 */
export function trustedTransportPublicKeyTemplate(modulus: Buffer, exponent: Buffer): TemplateAttribute[] {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_PRIVATE, value: false },
    { type: pkcs11js.CKA_MODULUS, value: Buffer.from(modulus) },
    { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from(exponent) },
    { type: pkcs11js.CKA_WRAP, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_TRUSTED, value: true },
    {
      type: pkcs11js.CKA_WRAP_TEMPLATE,
      value: [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_TRUSTED, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
      ],
    },
    { type: pkcs11js.CKA_MODIFIABLE, value: false },
  ];
}

/** The service's root key in an HSM (root-key.ts): encrypts and decrypts, never leaves, unmodifiable. */
export function rootKeyTemplate(label: string): TemplateAttribute[] {
  return build({
    label,
    objectId: undefined,
    private: true,
    trusted: false,
    extractable: false,
    usage: { encrypt: true, decrypt: true, wrap: false, unwrap: false },
  });
}
