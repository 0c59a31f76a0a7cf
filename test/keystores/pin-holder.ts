/**
 * An adversary who holds only a member's crypto-user PIN (or no PIN at all: a public session), run
 * in a child process of its own, as another program on the HSM's host would be: its own load of
 * the PKCS#11 library, its own sessions, no Strongroom code in it. Each step reports the CKR_ name
 * the token answered (or CKR_OK), and the value when it got one: so a test asserts exactly which door
 * is shut, and a test against an unprotected cluster key shows the same steps succeeding.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { returnValueName } from '../../src/keystores/pkcs11/errors.ts';
import { SOFTHSM_MODULE } from './softhsm.ts';

const PKCS11JS = createRequire(import.meta.url).resolve('pkcs11js');

export type PinHolderStep =
  /** C_WrapKey the KMS key (label) under the cluster wrapping key, then C_UnwrapKey it with `template` and read CKA_VALUE. */
  | { readonly kind: 'wrap-and-unwrap'; readonly keyLabel: string; readonly template: ReadonlyArray<{ type: number; value?: unknown }> }
  /** C_SetAttributeValue on the object with this CKA_ID (and class). */
  | { readonly kind: 'set-attribute'; readonly objectId: string; readonly objectClass: number; readonly type: number; readonly value: boolean }
  /** C_WrapKey the cluster wrapping key under itself. */
  | { readonly kind: 'wrap-cluster-key-under-itself' }
  /** C_UnwrapKey `wrappedHex` (RSA-OAEP-SHA1) with the ceremony's transport private key, then read CKA_VALUE. */
  | { readonly kind: 'unwrap-with-transport-key'; readonly wrappedHex: string; readonly template: ReadonlyArray<{ type: number; value?: unknown }> }
  /** CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED, CKA_MODIFIABLE, CKA_DECRYPT of the KMS key (label). */
  | { readonly kind: 'read-attributes'; readonly keyLabel: string }
  /** As the SO: import `keyHex` as a trusted session key and wrap the cluster key under it (value: the wrap, hex). */
  | { readonly kind: 'so-wrap-cluster-key'; readonly soPin: string; readonly keyHex: string };

export interface PinHolderResult {
  readonly steps: Record<string, string>;
  readonly value?: string;
  readonly attributes?: Record<string, boolean>;
}

/** Runs one step against the token; `pin` undefined: a R/W public session (no login at all). */
export function asPinHolder(conf: string, tokenLabel: string, pin: string | undefined, step: PinHolderStep): PinHolderResult {
  const output = execFileSync(process.execPath, ['-e', SCRIPT], {
    env: { ...process.env, SOFTHSM2_CONF: conf, PIN_HOLDER: JSON.stringify({ pkcs11js: PKCS11JS, module: SOFTHSM_MODULE, tokenLabel, pin, step }) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result = JSON.parse(output) as { steps: Record<string, number>; value?: string; attributes?: Record<string, boolean> };
  // Names from Strongroom's own table: pkcs11js 2.1.7 calls v2.40's CKR_ACTION_PROHIBITED "CKR_VENDOR_DEFINED".
  const steps = Object.fromEntries(Object.entries(result.steps).map(([step, rv]) => [step, rv === 0 ? 'CKR_OK' : (MORE_NAMES[rv] ?? returnValueName(rv))]));
  return { ...result, steps };
}

/** Return values the tests name that errors.ts's table (what the store maps) has no entry for. */
const MORE_NAMES: Record<number, string> = { 0x69: 'CKR_KEY_NOT_WRAPPABLE', 0x6a: 'CKR_KEY_UNEXTRACTABLE' };

const SCRIPT = `
const input = JSON.parse(process.env.PIN_HOLDER);
const P = require(input.pkcs11js);
const p = new P.PKCS11(); p.load(input.module); p.C_Initialize();
const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === input.tokenLabel);
const s = p.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
if (input.pin !== undefined) p.C_Login(s, P.CKU_USER, input.pin);
if (input.step.kind === 'so-wrap-cluster-key') p.C_Login(s, P.CKU_SO, input.step.soPin);
const steps = {};
const result = { steps };
const rv = (name, run) => { try { const out = run(); steps[name] = 0; return out; } catch (e) { const m = /^CKR_\\w+:(\\d+)/.exec(e.message); const code = typeof e.code === 'number' ? e.code : m ? Number(m[1]) : undefined; if (code === undefined) throw e; steps[name] = code; return undefined; } };
const find = (template) => { p.C_FindObjectsInit(s, template); const r = p.C_FindObjects(s, 10); p.C_FindObjectsFinal(s); return r; };
const cwk = () => find([{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_ID, value: Buffer.from('strongroom/cluster-wrapping-key', 'latin1') }])[0];
const byLabel = (label) => find([{ type: P.CKA_LABEL, value: label }])[0];
const readValue = (key) => { const got = rv('read-value', () => p.C_GetAttributeValue(s, key, [{ type: P.CKA_VALUE }])); if (got) result.value = got[0].value.toString('hex'); };
const step = input.step;
if (step.kind === 'wrap-and-unwrap') {
  const wrapping = cwk();
  const wrapped = rv('wrap', () => p.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, wrapping, byLabel(step.keyLabel), Buffer.alloc(40)));
  const copy = wrapped && rv('unwrap', () => p.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, wrapping, wrapped, step.template));
  if (copy) { readValue(copy); p.C_DestroyObject(s, copy); }
} else if (step.kind === 'set-attribute') {
  const [object] = find([{ type: P.CKA_CLASS, value: step.objectClass }, { type: P.CKA_ID, value: Buffer.from(step.objectId, 'latin1') }]);
  if (!object) throw new Error('no such object');
  rv('set', () => p.C_SetAttributeValue(s, object, [{ type: step.type, value: step.value }]));
} else if (step.kind === 'wrap-cluster-key-under-itself') {
  const wrapping = cwk();
  rv('wrap', () => p.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, wrapping, wrapping, Buffer.alloc(40)));
} else if (step.kind === 'unwrap-with-transport-key') {
  const [privateKey] = find([{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_ID, value: Buffer.from('strongroom/ceremony-transport-key', 'latin1') }]);
  if (!privateKey) throw new Error('no transport key');
  const oaep = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, source: 1 } };
  const key = rv('unwrap', () => p.C_UnwrapKey(s, oaep, privateKey, Buffer.from(step.wrappedHex, 'hex'), step.template));
  if (key) { readValue(key); p.C_DestroyObject(s, key); }
} else if (step.kind === 'so-wrap-cluster-key') {
  const known = rv('create', () => p.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_VALUE, value: Buffer.from(step.keyHex, 'hex') }, { type: P.CKA_WRAP, value: true },
    { type: P.CKA_TRUSTED, value: true } ]));
  const wrapped = known && rv('wrap', () => p.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, known, cwk(), Buffer.alloc(40)));
  if (wrapped) result.value = wrapped.toString('hex');
} else if (step.kind === 'read-attributes') {
  const names = ['CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_WRAP_WITH_TRUSTED', 'CKA_MODIFIABLE', 'CKA_DECRYPT'];
  const got = p.C_GetAttributeValue(s, byLabel(step.keyLabel), names.map((name) => ({ type: P[name] })));
  result.attributes = Object.fromEntries(names.map((name, i) => [name, got[i].value[0] !== 0]));
}
p.C_CloseSession(s); p.C_Finalize();
process.stdout.write(JSON.stringify(result));
`;
