import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';
import { OBJECT_ID_LENGTH } from '../reference.ts';
import { removeFromBackupFile } from './backup.ts';
import { createClusterKey, installClusterKey } from './ceremony.ts';
import { ChangeLock } from './change-lock.ts';
import type { CatalogMember, ClusterStatus, HsmClusterOptions, HsmRequestInfo, MemberState } from './cluster-types.ts';
import { HsmClusterError } from './cluster-types.ts';
import { Deadlines } from './deadlines.ts';
import { dispatch, type DispatchContext } from './dispatch.ts';
import { MemoryJournal } from './journal.ts';
import { NOT_NOW, type HsmMember } from './member.ts';
import { joinMember } from './join.ts';
import { CATALOG_READ_TIMEOUT_MS, boundedMembership, membershipChange, unfollowedMembers } from './membership.ts';
import { checkMember, foundBusy, healthProblem, resyncMember } from './resync.ts';
import { createReplicatedKey, destroyOn } from './replicated-key.ts';
import { auditEvent, clusterStatus, errorCodeOf, newSlot, stateAfter, type ClusterContext, type Slot } from './slot.ts';

export * from './cluster-types.ts';

/**
 * An HSM cluster: 1..n members sharing a cluster wrapping key (ceremony.ts). Keys are generated
 * in one member and replicated to every active member by wrap/unwrap inside the HSMs before
 * createKey returns; crypto is spread round-robin over active members (dispatch.ts); a member that
 * fails or runs a call longer than `requestTimeoutMs` is taken out and the request retried on the
 * next, so the caller sees no error while one member is left; a member that is only busy stays in. A member that was out is probed every
 * `probeIntervalMs` and, once healthy, re-synchronised from the journal (objects created or
 * destroyed meanwhile) before it serves again.
 */

export class HsmCluster {
  readonly clusterId: string;
  readonly #slots: Slot[];
  #active: Slot[] = [];
  #next = 0;
  readonly #minReplicas: (members: number) => number;
  readonly #options: HsmClusterOptions;
  readonly #lock = new ChangeLock();
  /** What resync.ts and replicated-key.ts need from this cluster. */
  readonly #context: ClusterContext;
  #probe: NodeJS.Timeout | undefined;
  readonly #deadlines: Deadlines;
  /** What dispatch.ts needs from this cluster. */
  readonly #dispatch: DispatchContext;
  #closed = false;
  /** The configuration each member was opened with, by name (membership.ts). */
  readonly #configs = new Map<string, string>();
  /** The catalog's member list, each read bounded (catalogTimeoutMs): it is read under the change lock. */
  readonly #membership: (() => Promise<CatalogMember[]>) | undefined;

  private constructor(options: HsmClusterOptions) {
    if (options.members.length === 0) throw new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', 'an HSM cluster needs at least one member');
    this.clusterId = options.clusterId;
    this.#options = options;
    this.#slots = options.members.map((member) => newSlot(member, 'DOWN', 'NOT_CONNECTED'));
    const { membership, catalogTimeoutMs = CATALOG_READ_TIMEOUT_MS } = options;
    this.#membership = membership && boundedMembership(membership, catalogTimeoutMs, options.clusterId);
    const minReplicas = options.minReplicas ?? 1;
    this.#minReplicas = typeof minReplicas === 'number' ? () => minReplicas : minReplicas;
    const requestTimeoutMs = options.requestTimeoutMs ?? 2_000;
    this.#deadlines = new Deadlines(requestTimeoutMs);
    this.#dispatch = {
      deadlines: this.#deadlines,
      queueTimeoutMs: options.queueTimeoutMs ?? Math.max(10_000, 5 * requestTimeoutMs),
      pick: (tried) => this.#pick(tried),
      fail: (slot, error, operation, objectId, request) => this.#fail(slot, error, operation, objectId, request),
      audit: (slot, operation, objectId, outcome, errorCode, request) => this.#audit(slot, operation, objectId, outcome, errorCode, request),
      checkHolding: (slot) => void this.#checkHolding(slot),
      insufficient: () => this.#insufficient(),
    };
    this.#context = {
      clusterId: this.clusterId,
      journal: options.journal ?? new MemoryJournal(),
      bounded: (operation, slot) => this.#bounded(operation, slot),
      source: (except) => this.#active.find((candidate) => candidate !== except),
      audit: (slot, operation, objectId) => this.#audit(slot, operation, objectId, 'ok'),
      fail: (slot, error, operation, objectId) => this.#fail(slot, error, operation, objectId),
      insufficient: () => this.#insufficient(),
      unfollowed: () => unfollowedMembers(this.#membership, this.#slots),
    };
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
    return clusterStatus(this.clusterId, this.#slots, this.#active.length);
  }

  get members(): readonly HsmMember[] {
    return this.#slots.map((slot) => slot.member);
  }

  /**
   * AES-GCM in one active member; ciphertext || tag. Retries elsewhere if the member fails.
   * `request`: the KMS request served, for the HSM audit log.
   */
  encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, request?: HsmRequestInfo): Promise<Buffer> {
    // Retrying after a timeout repeats the same IV with the same key, plaintext and AAD: the same
    // output, so a member that did finish late has not used the IV for anything else.
    return dispatch(
      this.#dispatch,
      'encrypt',
      objectId,
      request,
      (member, progress) => member.encrypt(objectId, iv, aad, plaintext, progress),
      (member) => (member.encryptNow ? member.encryptNow(objectId, iv, aad, plaintext) : NOT_NOW),
    );
  }

  decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer, request?: HsmRequestInfo): Promise<Buffer> {
    return dispatch(
      this.#dispatch,
      'decrypt',
      objectId,
      request,
      (member, progress) => member.decrypt(objectId, iv, aad, sealed, progress),
      (member) => (member.decryptNow ? member.decryptNow(objectId, iv, aad, sealed) : NOT_NOW),
    );
  }

  /** Random bytes from an active member's generator (GenerateRandom with an HSM key store), with failover. */
  async generateRandom(length: number, request?: HsmRequestInfo): Promise<Buffer> {
    return dispatch(this.#dispatch, 'random', undefined, request, (member, progress) => member.generateRandom(length, progress));
  }

  /**
   * Generates an AES-256 key in one active member and replicates it to every other active member
   * before returning its CKA_ID. Members out of service owe it (journal) and get it at resync. If
   * fewer than minReplicas members end up holding it, it is destroyed where it was made and the
   * call fails.
   */
  async createKey(keyId: string, version: number): Promise<Buffer> {
    return this.#exclusive(() => createReplicatedKey(this.#context, this.#rotation(), this.#slots, keyId, version, this.#minReplicas(this.#slots.length)));
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
      const { journal } = this.#context;
      for (const slot of this.#slots) {
        if (slot.state === 'ACTIVE' && (await destroyOn(this.#context, slot, objectId))) {
          destroyedIn.push(slot.member.name);
          // A destroy recorded before the call (key-deletion: owed by every member first) is done.
          await journal.settle(slot.member.name, objectId);
        } else {
          await journal.owe(slot.member.name, objectId, 'destroy');
          owedBy.push(slot.member.name);
        }
      }
      // Read after destroying: a member joining meanwhile is listed here, or copies from a source that no longer holds it.
      for (const name of await this.#context.unfollowed()) {
        await journal.owe(name, objectId, 'destroy');
        owedBy.push(name);
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
  async addMember(
    member: HsmMember,
    sourceSoPin: SecretBytes,
    memberSoPin: SecretBytes,
    sourceName?: string,
    onJoined?: () => Promise<void>,
  ): Promise<string> {
    return this.#exclusive(async () => {
      if (this.#slots.some((slot) => slot.member.name === member.name)) throw new Pkcs11Error('CEREMONY_FAILED', `member ${member.name} is already in the cluster`);
      const source = sourceName === undefined ? this.#active[0] : this.#active.find((slot) => slot.member.name === sourceName);
      if (!source) throw sourceName === undefined ? this.#insufficient() : new Pkcs11Error('CEREMONY_FAILED', `source member ${sourceName} is not active`);
      const slot = newSlot(member, 'SYNCING', undefined);
      const fingerprint = await joinMember(this.#context, slot, source, {
        sourceSoPin,
        memberSoPin,
        sourceBusy: (busy) => this.#setState(source, busy ? 'SYNCING' : 'ACTIVE', undefined),
        ...(onJoined ? { onJoined } : {}),
      });
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

  /**
   * Checks every active member's health now, as after a KEY_NOT_FOUND (#checkHolding), and
   * returns the status. An active member is otherwise only found out by the next request that
   * reaches it: an agent killed or a token removed while the cluster is idle would still count as
   * ACTIVE. For /readyz and the member gauge; health checks touch no key and are not audited
   * unless they fail.
   */
  async checkHealth(): Promise<ClusterStatus> {
    await Promise.all(this.#active.map((slot) => this.#checkHolding(slot)));
    return this.status();
  }

  /**
   * Follows the catalog's membership, then runs the re-synchronisation of every member that is out
   * now (each probe tick; tests call it directly).
   */
  async probeNow(): Promise<void> {
    await this.#followMembership();
    await Promise.all(this.#slots.filter((slot) => slot.state === 'DOWN').map((slot) => this.#bringBack(slot)));
  }

  /** Adds the members the catalog lists that this cluster lacks (out of service) and drops those it no longer lists. */
  async #followMembership(): Promise<void> {
    const membership = this.#membership;
    if (!membership || this.#closed) return;
    // Read under the lock: a list read before a join in this process finished would drop the new member.
    await this.#exclusive(async () => {
      if (this.#closed) return;
      let listed;
      try {
        listed = await membership();
      } catch {
        return; // the catalog is unreachable or too slow: keep the members there are, try again next tick
      }
      const { leaving, joining } = membershipChange(this.#slots, listed, this.#configs);
      for (const slot of leaving) {
        this.#slots.splice(this.#slots.indexOf(slot), 1);
        this.#audit(slot, 'leave', undefined, 'ok');
      }
      this.#slots.push(...joining);
      this.#refreshActive();
      await Promise.allSettled(leaving.map((slot) => slot.member.close()));
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probe) clearInterval(this.#probe);
    await this.#exclusive(async () => {
      await Promise.allSettled(this.#slots.map((slot) => slot.member.close()));
    });
    this.#deadlines.close();
    this.#options.audit?.flush?.();
  }

  #pick(tried: readonly Slot[] | undefined): Slot | undefined {
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

  /** Takes a member out after a failure; requests waiting for its capacity go elsewhere. */
  #fail(slot: Slot, error: unknown, operation: string, objectId?: Buffer, request?: HsmRequestInfo): void {
    const code = errorCodeOf(error);
    this.#audit(slot, operation, objectId, 'error', code, request);
    if (slot.state !== 'ACTIVE') return;
    this.#setState(slot, stateAfter(code), code);
    this.#deadlines.abandonWaiting(slot.member.name);
  }

  /**
   * After a member said KEY_NOT_FOUND: if it no longer passes its health check or has lost this
   * cluster's wrapping key (its token was removed or replaced), it is taken out like a failed
   * member. A key that was only destroyed leaves it in service.
   */
  async #checkHolding(slot: Slot): Promise<void> {
    if (slot.checking || slot.state !== 'ACTIVE' || this.#closed) return;
    slot.checking = true;
    try {
      const problem = await healthProblem(this.#context, slot);
      if (problem && !foundBusy(problem)) this.#fail(slot, problem, 'health');
    } catch (error) {
      if (!foundBusy(error)) this.#fail(slot, error, 'health');
    } finally {
      slot.checking = false;
    }
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
    // A tick that finds the last one still running (a stalled catalog read) is skipped: ticks never pile up on the change lock.
    let ticking = false;
    this.#probe = setInterval(() => {
      if (ticking) return;
      ticking = true;
      void this.probeNow().catch(() => {}).finally(() => (ticking = false));
    }, this.#options.probeIntervalMs ?? 1_000);
    this.#probe.unref();
  }

  /** Connects, checks, re-synchronises and returns a member to service; leaves it out on any failure. */
  async #bringBack(slot: Slot): Promise<void> {
    if (slot.probing || slot.state === 'ACTIVE' || slot.state === 'FAILED' || this.#closed) return;
    slot.probing = true;
    try {
      await checkMember(this.#context, slot);
      await this.#exclusive(async () => {
        slot.state = 'SYNCING';
        await resyncMember(this.#context, slot);
        this.#setState(slot, 'ACTIVE', undefined);
        this.#audit(slot, 'resync', undefined, 'ok');
      });
    } catch (error) {
      const code = errorCodeOf(error);
      this.#setState(slot, stateAfter(code), code);
    } finally {
      slot.probing = false;
    }
  }

  #insufficient(): HsmClusterError {
    return new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', `HSM cluster ${this.clusterId} has too few active members`);
  }

  #audit(slot: Slot, operation: string, objectId: Buffer | undefined, outcome: 'ok' | 'error', errorCode?: string, request?: HsmRequestInfo): void {
    this.#options.audit?.(auditEvent(slot.member.name, operation, objectId, outcome, errorCode, request));
  }

  /** Serialises the cluster's changes (create, destroy, resync, membership); crypto does not wait. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#lock.run(fn);
  }
}

