import { CryptoError } from '../../../crypto/errors.ts';
import { bytesToUuid } from '../../../crypto/random.ts';
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';
import { OBJECT_ID_LENGTH, newObjectId } from '../reference.ts';
import { keyVersionLabel } from '../templates.ts';
import { removeFromBackupFile } from './backup.ts';
import { createClusterKey, installClusterKey } from './ceremony.ts';
import type { ClusterConnectionError, ClusterStatus, HsmClusterOptions, MemberState } from './cluster-types.ts';
import { HsmClusterError } from './cluster-types.ts';
import { Deadlines } from './deadlines.ts';
import { MemoryJournal, type ClusterJournal } from './journal.ts';
import type { HsmMember } from './member.ts';

export * from './cluster-types.ts';

/**
 * An HSM cluster: 1..n members sharing a cluster wrapping key (ceremony.ts). Keys are generated
 * in one member and replicated to every active member by wrap/unwrap inside the HSMs before
 * createKey returns; crypto is spread round-robin over active members; a member that fails or
 * answers later than `requestTimeoutMs` is taken out and the request retried on the next, so the
 * caller sees no error while one member is left. A member that was out is probed every
 * `probeIntervalMs` and, once healthy, re-synchronised from the journal (objects created or
 * destroyed meanwhile) before it serves again.
 */

interface Slot {
  readonly member: HsmMember;
  state: MemberState;
  errorCode: string | undefined;
  probing: boolean;
}

const ENCRYPT = 0;
const DECRYPT = 1;
/** Errors that are the member's credentials, not its health: probing again could lock the PIN. */
const CREDENTIAL_CODES = new Set(['PIN_INCORRECT', 'PIN_LOCKED', 'PIN_EXPIRED', 'PIN_INVALID', 'ALREADY_LOGGED_IN']);

export class HsmCluster {
  readonly clusterId: string;
  readonly #slots: Slot[];
  #active: Slot[] = [];
  #next = 0;
  readonly #journal: ClusterJournal;
  readonly #minReplicas: number;
  readonly #options: HsmClusterOptions;
  #mutex: Promise<void> = Promise.resolve();
  #probe: NodeJS.Timeout | undefined;
  readonly #deadlines: Deadlines;
  #closed = false;

  private constructor(options: HsmClusterOptions) {
    if (options.members.length === 0) throw new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', 'an HSM cluster needs at least one member');
    this.clusterId = options.clusterId;
    this.#options = options;
    this.#slots = options.members.map((member) => ({ member, state: 'DOWN', errorCode: 'NOT_CONNECTED', probing: false }));
    this.#journal = options.journal ?? new MemoryJournal();
    this.#minReplicas = options.minReplicas ?? 1;
    this.#deadlines = new Deadlines(options.requestTimeoutMs ?? 2_000);
  }

  /**
   * Runs the key ceremony over fresh members (the first generates the cluster wrapping key) and
   * connects. soPins: each member's Security Officer PIN, by member name; used here only.
   */
  static async initialise(options: HsmClusterOptions, soPins: ReadonlyMap<string, SecretBytes>): Promise<HsmCluster> {
    const [first, ...rest] = options.members;
    if (!first) throw new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', 'an HSM cluster needs at least one member');
    const soPinOf = (member: HsmMember): SecretBytes => {
      const pin = soPins.get(member.name);
      if (!pin) throw new Pkcs11Error('CEREMONY_FAILED', `no SO PIN given for HSM member ${member.name}`);
      return pin;
    };
    for (const member of options.members) soPinOf(member);
    // Every user PIN first: a member that cannot log in must not receive the cluster key.
    await Promise.all(options.members.map((member) => member.connect()));
    await createClusterKey(options.clusterId, first, soPinOf(first));
    for (const member of rest) await installClusterKey(options.clusterId, first, soPinOf(first), member, soPinOf(member));
    return HsmCluster.connect(options);
  }

  /**
   * Connects every member that answers; the others stay out and are probed. Fails with
   * INVALID_CREDENTIALS (or USER_LOCKED_OUT, …) when every member refused the PIN, and with
   * INSUFFICIENT_CLOUDHSM_HSMS when none is usable for another reason.
   */
  static async connect(options: HsmClusterOptions): Promise<HsmCluster> {
    const cluster = new HsmCluster(options);
    await Promise.all(cluster.#slots.map((slot) => cluster.#bringBack(slot)));
    if (cluster.#active.length === 0) {
      const error = cluster.status().connectionErrorCode ?? 'INSUFFICIENT_CLOUDHSM_HSMS';
      await cluster.close();
      throw new HsmClusterError(error, `HSM cluster ${options.clusterId} has no usable member (${error})`);
    }
    cluster.#startProbing();
    return cluster;
  }

  status(): ClusterStatus {
    const members = this.#slots.map(({ member, state, errorCode }) => ({ name: member.name, state, ...(state === 'ACTIVE' ? {} : { errorCode }) }));
    if (this.#active.length > 0) return { clusterId: this.clusterId, connectionState: 'CONNECTED', members };
    const codes = this.#slots.map((slot) => slot.errorCode);
    let error: ClusterConnectionError = 'INSUFFICIENT_CLOUDHSM_HSMS';
    if (codes.length > 0 && codes.every((code) => code === 'PIN_INCORRECT' || code === 'PIN_INVALID')) error = 'INVALID_CREDENTIALS';
    else if (codes.length > 0 && codes.every((code) => code === 'PIN_LOCKED')) error = 'USER_LOCKED_OUT';
    else if (codes.length > 0 && codes.every((code) => code === 'ALREADY_LOGGED_IN')) error = 'USER_LOGGED_IN';
    else if (codes.length > 0 && codes.every((code) => code === 'CONNECTION_FAILED')) error = 'NETWORK_ERRORS';
    return { clusterId: this.clusterId, connectionState: 'FAILED', connectionErrorCode: error, members };
  }

  get members(): readonly HsmMember[] {
    return this.#slots.map((slot) => slot.member);
  }

  /** AES-GCM in one active member; ciphertext || tag. Retries elsewhere if the member fails. */
  encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    // Retrying after a timeout repeats the same IV with the same key, plaintext and AAD: the same
    // output, so a member that did finish late has not used the IV for anything else.
    return this.#crypto(ENCRYPT, objectId, iv, aad, plaintext);
  }

  decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
    return this.#crypto(DECRYPT, objectId, iv, aad, sealed);
  }

  /** Random bytes from an active member's generator (GenerateRandom with an HSM key store), with failover. */
  async generateRandom(length: number): Promise<Buffer> {
    let tried: Slot[] | undefined;
    for (let attempt = 0; attempt < this.#slots.length; attempt++) {
      const slot = this.#pick(tried);
      if (!slot) break;
      try {
        return await this.#bounded(slot.member.generateRandom(length), slot);
      } catch (error) {
        if (error instanceof RangeError) throw error;
        this.#fail(slot, error, 'random');
        (tried ??= []).push(slot);
      }
    }
    throw this.#insufficient();
  }

  /**
   * Generates an AES-256 key in one active member and replicates it to every other active member
   * before returning its CKA_ID. Members out of service owe it (journal) and get it at resync. If
   * fewer than minReplicas members end up holding it, it is destroyed where it was made and the
   * call fails.
   */
  async createKey(keyId: string, version: number): Promise<Buffer> {
    return this.#exclusive(async () => {
      const label = keyVersionLabel(keyId, version);
      const candidates = this.#rotation();
      let source: Slot | undefined;
      let objectId = newObjectId(keyId, version);
      for (const slot of candidates) {
        try {
          await this.#bounded(slot.member.generateAesKey(objectId, label), slot);
          source = slot;
          break;
        } catch (error) {
          this.#fail(slot, error, 'generate', objectId);
          // It may have made the key after all (a timeout): that key must never be taken for the
          // one another member makes next, so it is owed a destroy and the next attempt gets a
          // CKA_ID of its own.
          await this.#journal.owe(slot.member.name, objectId, 'destroy');
          objectId = newObjectId(keyId, version);
        }
      }
      if (!source) throw this.#insufficient();
      const holders: Slot[] = [source];
      const failed: Slot[] = [];
      try {
        const wrapped = await this.#bounded(source.member.wrap(objectId), source);
        await Promise.all(
          candidates
            .filter((slot) => slot !== source && slot.state === 'ACTIVE')
            .map(async (slot) => {
              try {
                await this.#bounded(slot.member.unwrap(objectId, label, wrapped), slot);
                holders.push(slot);
              } catch (error) {
                failed.push(slot);
                this.#fail(slot, error, 'replicate', objectId);
              }
            }),
        );
        if (holders.length < this.#minReplicas) throw this.#insufficient();
      } catch (error) {
        // Fail cleanly: gone from every member that made it; a member that failed mid-unwrap may
        // have made it too, so it owes a destroy.
        const destroyed = await Promise.all(holders.map((slot) => this.#destroyOn(slot, objectId)));
        for (const [index, slot] of holders.entries()) if (!destroyed[index]) failed.push(slot);
        for (const slot of failed) await this.#journal.owe(slot.member.name, objectId, 'destroy');
        throw error;
      }
      for (const slot of this.#slots) {
        if (!holders.includes(slot)) await this.#journal.owe(slot.member.name, objectId, 'create');
      }
      for (const slot of holders) this.#audit(slot, 'create', objectId, 'ok');
      return objectId;
    });
  }

  /**
   * Destroys the object in every member; a member out of service owes the destroy (applied at its
   * resync, before it serves again). Then removes it from every managed backup file.
   */
  async destroyKey(objectId: Buffer): Promise<{ destroyedIn: string[]; owedBy: string[] }> {
    if (objectId.length !== OBJECT_ID_LENGTH) throw new Pkcs11Error('REFERENCE_INVALID', 'an HSM object id is 28 bytes');
    return this.#exclusive(async () => {
      const destroyedIn: string[] = [];
      const owedBy: string[] = [];
      for (const slot of this.#slots) {
        if (slot.state === 'ACTIVE' && (await this.#destroyOn(slot, objectId))) destroyedIn.push(slot.member.name);
        else {
          await this.#journal.owe(slot.member.name, objectId, 'destroy');
          owedBy.push(slot.member.name);
        }
      }
      for (const file of (await this.#options.backupFiles?.()) ?? []) await removeFromBackupFile(file, objectId);
      return { destroyedIn, owedBy };
    });
  }

  /**
   * Adds a fresh member: the ceremony installs the cluster wrapping key from an active member,
   * every existing object is replicated to it, and it starts serving. Returns the ceremony's
   * transport key fingerprint (ceremony.ts).
   */
  async addMember(member: HsmMember, sourceSoPin: SecretBytes, memberSoPin: SecretBytes, sourceName?: string): Promise<string> {
    return this.#exclusive(async () => {
      if (this.#slots.some((slot) => slot.member.name === member.name)) throw new Pkcs11Error('CEREMONY_FAILED', `member ${member.name} is already in the cluster`);
      const source = sourceName === undefined ? this.#active[0] : this.#active.find((slot) => slot.member.name === sourceName);
      if (!source) throw sourceName === undefined ? this.#insufficient() : new Pkcs11Error('CEREMONY_FAILED', `source member ${sourceName} is not active`);
      // The user PIN first: a member that cannot log in must not receive the cluster key.
      await member.connect();
      // The source leaves the rotation during its SO step (its user sessions are closed then).
      this.#setState(source, 'SYNCING', undefined);
      let fingerprint: string;
      try {
        fingerprint = await installClusterKey(this.clusterId, source.member, sourceSoPin, member, memberSoPin);
      } finally {
        this.#setState(source, 'ACTIVE', undefined);
      }
      // Copied under the change lock: no key is created or destroyed meanwhile.
      const slot: Slot = { member, state: 'SYNCING', errorCode: undefined, probing: false };
      const present = new Set((await this.#bounded(member.listObjects(), slot)).map((object) => object.objectId.toString('hex')));
      for (const object of await this.#bounded(source.member.listObjects(), source)) {
        if (present.has(object.objectId.toString('hex'))) continue;
        const wrapped = await this.#bounded(source.member.wrap(object.objectId), source);
        await this.#bounded(member.unwrap(object.objectId, object.label, wrapped), slot);
      }
      slot.state = 'ACTIVE';
      this.#slots.push(slot);
      this.#refreshActive();
      this.#audit(slot, 'join', undefined, 'ok');
      return fingerprint;
    });
  }

  /** Takes a member out of the cluster and closes it (its token keeps its objects). */
  async removeMember(name: string): Promise<void> {
    await this.#exclusive(async () => {
      const index = this.#slots.findIndex((slot) => slot.member.name === name);
      if (index < 0) throw new Pkcs11Error('TOKEN_NOT_FOUND', `no member ${name} in the cluster`);
      const [slot] = this.#slots.splice(index, 1);
      this.#refreshActive();
      await slot!.member.close();
    });
  }

  /** Runs the re-synchronisation of every member that is out now (tests; the probe does it too). */
  async probeNow(): Promise<void> {
    await Promise.all(this.#slots.filter((slot) => slot.state === 'DOWN').map((slot) => this.#bringBack(slot)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probe) clearInterval(this.#probe);
    await this.#exclusive(async () => {
      await Promise.allSettled(this.#slots.map((slot) => slot.member.close()));
    });
    this.#deadlines.close();
  }

  async #crypto(kind: number, objectId: Buffer, iv: Buffer, aad: Buffer, data: Buffer): Promise<Buffer> {
    let tried: Slot[] | undefined;
    let notFound: unknown;
    for (let attempt = 0; attempt < this.#slots.length; attempt++) {
      const slot = this.#pick(tried);
      if (!slot) break;
      try {
        const call = kind === ENCRYPT ? slot.member.encrypt(objectId, iv, aad, data) : slot.member.decrypt(objectId, iv, aad, data);
        return await this.#bounded(call, slot);
      } catch (error) {
        if (error instanceof CryptoError) throw error; // the caller's ciphertext or context, not the member
        if (error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND') notFound = error;
        else this.#fail(slot, error, kind === ENCRYPT ? 'encrypt' : 'decrypt', objectId);
        (tried ??= []).push(slot);
      }
    }
    if (notFound) throw notFound;
    throw this.#insufficient();
  }

  #pick(tried: Slot[] | undefined): Slot | undefined {
    const active = this.#active;
    for (let index = 0; index < active.length; index++) {
      const slot = active[this.#next++ % active.length]!;
      if (this.#next > 1e9) this.#next = 0;
      if (!tried || !tried.includes(slot)) return slot;
    }
    return undefined;
  }

  #rotation(): Slot[] {
    const start = this.#next++ % Math.max(1, this.#active.length);
    return [...this.#active.slice(start), ...this.#active.slice(0, start)];
  }

  #bounded<T>(operation: Promise<T>, slot: Slot): Promise<T> {
    return this.#deadlines.bound(operation, slot.member.name);
  }

  /** Takes a member out after a failure. */
  #fail(slot: Slot, error: unknown, operation: string, objectId?: Buffer): void {
    const code = error instanceof Pkcs11Error ? error.code : 'FAILED';
    this.#audit(slot, operation, objectId, 'error', code);
    if (slot.state === 'ACTIVE') this.#setState(slot, CREDENTIAL_CODES.has(code) ? 'FAILED' : 'DOWN', code);
  }

  #setState(slot: Slot, state: MemberState, errorCode: string | undefined): void {
    slot.state = state;
    slot.errorCode = errorCode;
    this.#refreshActive();
  }

  #refreshActive(): void {
    this.#active = this.#slots.filter((slot) => slot.state === 'ACTIVE');
  }

  #startProbing(): void {
    if (this.#probe || this.#closed) return;
    this.#probe = setInterval(() => void this.probeNow(), this.#options.probeIntervalMs ?? 1_000);
    this.#probe.unref();
  }

  /** Connects, checks, re-synchronises and returns a member to service; leaves it out on any failure. */
  async #bringBack(slot: Slot): Promise<void> {
    if (slot.probing || slot.state === 'ACTIVE' || slot.state === 'FAILED' || this.#closed) return;
    slot.probing = true;
    try {
      await this.#bounded(slot.member.connect(), slot);
      const health = await this.#bounded(slot.member.health(), slot);
      if (!health.ok) throw new Pkcs11Error((health.code as Pkcs11Error['code']) ?? 'FAILED', `member ${slot.member.name} is unhealthy`);
      if (health.clusterId !== this.clusterId) throw new Pkcs11Error('CLUSTER_KEY_MISSING', `member ${slot.member.name} does not hold this cluster's wrapping key`);
      await this.#exclusive(async () => {
        slot.state = 'SYNCING';
        await this.#resync(slot);
        this.#setState(slot, 'ACTIVE', undefined);
        this.#audit(slot, 'resync', undefined, 'ok');
      });
    } catch (error) {
      const code = error instanceof Pkcs11Error ? error.code : 'FAILED';
      slot.state = CREDENTIAL_CODES.has(code) ? 'FAILED' : 'DOWN';
      slot.errorCode = code;
      this.#refreshActive();
    } finally {
      slot.probing = false;
    }
  }

  /** Applies what the member owes: destroys first, then the objects it missed, copied from an active member. */
  async #resync(slot: Slot): Promise<void> {
    const owed = await this.#journal.owed(slot.member.name);
    if (owed.length === 0) return;
    const present = new Set((await this.#bounded(slot.member.listObjects(), slot)).map((object) => object.objectId.toString('hex')));
    for (const entry of owed) {
      if (entry.operation === 'destroy') {
        await this.#bounded(slot.member.destroy(entry.objectId), slot);
        this.#audit(slot, 'resync-destroy', entry.objectId, 'ok');
      } else if (!present.has(entry.objectId.toString('hex'))) {
        const source = this.#active.find((candidate) => candidate !== slot);
        if (!source) throw this.#insufficient();
        let wrapped: Buffer;
        try {
          wrapped = await this.#bounded(source.member.wrap(entry.objectId), source);
        } catch (error) {
          if (!(error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND')) throw error;
          await this.#journal.settle(slot.member.name, entry.objectId); // destroyed since: nothing to copy
          continue;
        }
        await this.#bounded(slot.member.unwrap(entry.objectId, labelOf(entry.objectId), wrapped), slot);
        this.#audit(slot, 'resync-create', entry.objectId, 'ok');
      }
      await this.#journal.settle(slot.member.name, entry.objectId);
    }
  }

  async #destroyOn(slot: Slot, objectId: Buffer): Promise<boolean> {
    try {
      await this.#bounded(slot.member.destroy(objectId), slot);
      this.#audit(slot, 'destroy', objectId, 'ok');
      return true;
    } catch (error) {
      this.#fail(slot, error, 'destroy', objectId);
      return false;
    }
  }

  #insufficient(): HsmClusterError {
    return new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', `HSM cluster ${this.clusterId} has too few active members`);
  }

  #audit(slot: Slot, operation: string, objectId: Buffer | undefined, outcome: 'ok' | 'error', errorCode?: string): void {
    this.#options.audit?.({
      member: slot.member.name,
      operation,
      ...(objectId ? { objectId: objectId.toString('hex') } : {}),
      outcome,
      ...(errorCode ? { errorCode } : {}),
    });
  }

  /** Serialises the cluster's changes (create, destroy, resync, membership); crypto does not wait. */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#mutex;
    let release!: () => void;
    this.#mutex = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}


/** The CKA_LABEL of an object, from its CKA_ID (key id and version, reference.ts). */
function labelOf(objectId: Buffer): string {
  return keyVersionLabel(bytesToUuid(objectId.subarray(0, 16)), objectId.readUInt32BE(16));
}
