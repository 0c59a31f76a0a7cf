import { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';
import { AgentConnection, connectionLost, type AgentAddress } from './agent-connection.ts';
import { checkRandomLength, type CallProgress, type HsmMember, type KeyObjectInfo, type MemberHealth, type TransportPublicKey } from './member.ts';
import { OP, utf8 } from './wire.ts';

export interface RemoteMemberOptions extends AgentAddress {
  readonly name: string;
  /** A request unanswered this long fails with MEMBER_TIMEOUT (default 10 s; the cluster's own bound is shorter). */
  readonly requestTimeoutMs?: number;
  /** Deadline of a key ceremony step (SO operations), ms; default 120 s. */
  readonly ceremonyTimeoutMs?: number;
  /**
   * The crypto user's PIN the agent must have logged in with (a custom key store's
   * KeyStorePassword); copied. When given, connect() fails with PIN_INCORRECT if the agent's
   * differs, and so does every call that finds its connection lost and opens a new one.
   */
  readonly expectedPin?: SecretBytes;
  /**
   * Crypto requests sent and not yet answered, at most; more wait here, in order (default: twice
   * the agent's sessions, as it says at connect; 16 before it has said).
   */
  readonly maxInFlight?: number;
}

/** Before the agent has said how many sessions it has. */
const DEFAULT_IN_FLIGHT = 16;

/** A crypto request waiting for a place among those in flight. */
interface Waiting {
  admit(): void;
  reject(error: Error): void;
}

/**
 * A cluster member served by `strongroom hsm-agent` on the HSM's host: one mutual-TLS 1.3
 * connection, requests multiplexed by id (agent-connection.ts). A lost connection fails every
 * request in flight with CONNECTION_FAILED (the cluster then takes the member out); the next call
 * reconnects. Every connection, the first and each one after, passes connect()'s handshake (#greet:
 * the agent's session count, then the PIN check when expectedPin is set) before it carries any
 * other request: an agent restarted meanwhile, perhaps on another token or PIN, is checked again.
 *
 * Crypto requests in flight are bounded (maxInFlight, by default twice the agent's sessions: one
 * running and one ready per session): the agent then never has to refuse one as busy, and a
 * burst waits here, where the cluster knows it is waiting (CallProgress.queued) and does not take
 * it for the agent failing. Control requests (health, connect, ceremony steps) are not held back.
 */
export class RemoteHsmMember implements HsmMember {
  readonly name: string;
  readonly #options: RemoteMemberOptions;
  readonly #expectedPin: SecretBytes | undefined;
  /** The connection requests go on; set only once its handshake (#greet) passed. */
  #connection: AgentConnection | undefined;
  /** A connection being made and greeted: callers meanwhile wait for it rather than dial their own. */
  #connecting: Promise<AgentConnection> | undefined;
  /** Every connection not yet lost, greeted or not (close() ends them all). */
  readonly #open = new Set<AgentConnection>();
  /**
   * The agent refused expectedPin: every call fails with this (PIN_INCORRECT) without dialling,
   * until connect() tries again. The agent allows one guess per connection so that no client
   * streams them; redialling on every call would be that stream.
   */
  #refused: Pkcs11Error | undefined;
  #inFlight = 0;
  #limit: number;
  readonly #waiting: Waiting[] = [];
  #waitHead = 0;
  #closed = false;

  constructor(options: RemoteMemberOptions) {
    this.name = options.name;
    this.#options = options;
    this.#expectedPin = options.expectedPin && SecretBytes.from(options.expectedPin.exposeSecretBytes());
    this.#limit = options.maxInFlight ?? DEFAULT_IN_FLIGHT;
  }

  /**
   * Connects; with expectedPin, also checks (in the agent, in constant time) that the agent's PIN
   * is that one, else fails with PIN_INCORRECT. An explicit attempt: it clears an earlier refusal.
   */
  async connect(): Promise<void> {
    if (this.#closed) throw closedError(this.name);
    this.#refused = undefined;
    const current = this.#live();
    // An open connection is greeted again: the agent re-opens its token if it had lost it (OP.connect).
    if (current) await this.#greet(current);
    else await this.#connect();
  }

  async verifyPin(pin: SecretBytes): Promise<boolean> {
    const [answer] = await this.#request(OP.verifyPin, [Buffer.from(pin.exposeSecretBytes())], true);
    if (!answer || answer.length !== 1) protocolError();
    return answer[0] === 1;
  }

  async health(): Promise<MemberHealth> {
    try {
      const [ok, code, clusterId, protectedKey] = await this.#request(OP.health, []);
      const codeText = code?.toString('utf8') ?? '';
      const cluster = clusterId?.toString('utf8') ?? '';
      // Fourth field (optional, older agents send three): 1/0 clusterKeyProtected, absent when unknown.
      const keyProtection = protectedKey?.length === 1 ? { clusterKeyProtected: protectedKey[0] === 1 } : {};
      return { ok: ok?.[0] === 1, ...(codeText ? { code: codeText } : {}), ...(cluster ? { clusterId: cluster, ...keyProtection } : {}) };
    } catch (error) {
      return { ok: false, code: error instanceof Pkcs11Error ? error.code : 'FAILED' };
    }
  }

  async generateAesKey(objectId: Buffer, label: string): Promise<void> {
    await this.#request(OP.generateAesKey, [objectId, utf8(label)]);
  }

  async wrap(objectId: Buffer): Promise<Buffer> {
    return (await this.#request(OP.wrap, [objectId]))[0] ?? protocolError();
  }

  async unwrap(objectId: Buffer, label: string, wrapped: Buffer): Promise<void> {
    await this.#request(OP.unwrap, [objectId, utf8(label), wrapped]);
  }

  async encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, progress?: CallProgress): Promise<Buffer> {
    return (await this.#limited(OP.encrypt, [objectId, iv, aad, plaintext], progress))[0] ?? protocolError();
  }

  async decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer, progress?: CallProgress): Promise<Buffer> {
    return (await this.#limited(OP.decrypt, [objectId, iv, aad, sealed], progress))[0] ?? protocolError();
  }

  async destroy(objectId: Buffer): Promise<boolean> {
    return (await this.#request(OP.destroy, [objectId]))[0]?.[0] === 1;
  }

  async listObjects(): Promise<KeyObjectInfo[]> {
    const fields = await this.#request(OP.listObjects, []);
    const objects: KeyObjectInfo[] = [];
    for (let index = 0; index + 1 < fields.length; index += 2) {
      objects.push({ objectId: Buffer.from(fields[index]!), label: fields[index + 1]!.toString('utf8') });
    }
    return objects;
  }

  async generateRandom(length: number, progress?: CallProgress): Promise<Buffer> {
    checkRandomLength(length);
    const encoded = Buffer.alloc(4);
    encoded.writeUInt32BE(length >>> 0, 0);
    const [bytes] = await this.#limited(OP.generateRandom, [encoded], progress);
    if (!bytes || bytes.length !== length) protocolError();
    return Buffer.from(bytes);
  }

  async createClusterKey(soPin: SecretBytes, clusterId: string): Promise<void> {
    await this.#request(OP.createClusterKey, [Buffer.from(soPin.exposeSecretBytes()), utf8(clusterId)], true, this.#ceremonyTimeoutMs());
  }

  async beginJoin(soPin: SecretBytes): Promise<TransportPublicKey> {
    const [modulus, exponent] = await this.#request(OP.beginJoin, [Buffer.from(soPin.exposeSecretBytes())], true, this.#ceremonyTimeoutMs());
    if (!modulus || !exponent) protocolError();
    return { modulus: Buffer.from(modulus), exponent: Buffer.from(exponent) };
  }

  async wrapClusterKeyFor(soPin: SecretBytes, transport: TransportPublicKey): Promise<Buffer> {
    const [wrapped] = await this.#request(OP.wrapClusterKeyFor, [Buffer.from(soPin.exposeSecretBytes()), transport.modulus, transport.exponent], true, this.#ceremonyTimeoutMs());
    return wrapped ?? protocolError();
  }

  async completeJoin(soPin: SecretBytes, clusterId: string, wrappedClusterKey: Buffer): Promise<void> {
    await this.#request(OP.completeJoin, [Buffer.from(soPin.exposeSecretBytes()), utf8(clusterId), wrappedClusterKey], true, this.#ceremonyTimeoutMs());
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#expectedPin?.zero();
    this.#connection = undefined;
    const error = closedError(this.name);
    for (const connection of [...this.#open]) connection.close(error);
    this.#failWaiting(error);
  }

  /**
   * Key ceremony steps (SO operations: an RSA-3072 key pair made in the HSM, wrapping the cluster
   * key) take far longer than crypto calls on a busy or slow HSM; the operator waits for them.
   */
  #ceremonyTimeoutMs(): number {
    return Math.max(this.#options.ceremonyTimeoutMs ?? 120_000, this.#options.requestTimeoutMs ?? 10_000);
  }

  /** A crypto request: sent when fewer than the limit are in flight, else queued in order (see the class comment). */
  async #limited(op: number, fields: Buffer[], progress: CallProgress | undefined): Promise<Buffer[]> {
    if (this.#closed) throw closedError(this.name);
    if (this.#inFlight < this.#limit && this.#waitHead === this.#waiting.length) this.#inFlight++;
    else {
      progress?.queued();
      // The place is handed over by #release, already counted.
      await new Promise<void>((admit, reject) => this.#waiting.push({ admit, reject }));
    }
    try {
      if (progress && !progress.started()) throw new Pkcs11Error('POOL_TIMEOUT', `hsm-agent ${this.name}: the request was given up while it waited`);
      return await this.#request(op, fields);
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#takeWaiting();
    if (next) next.admit();
    else this.#inFlight--;
  }

  #takeWaiting(): Waiting | undefined {
    if (this.#waitHead === this.#waiting.length) return undefined;
    const next = this.#waiting[this.#waitHead++]!;
    if (this.#waitHead === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#waitHead = 0;
    }
    return next;
  }

  /**
   * Sends one request on the greeted connection, making one first if there is none;
   * `secretFirstField`: the first field is a PIN copy, zeroed once the frame is written (or not sent).
   */
  async #request(op: number, fields: Buffer[], secretFirstField = false, timeoutMs = this.#requestTimeoutMs()): Promise<Buffer[]> {
    let connection: AgentConnection;
    try {
      if (this.#closed) throw closedError(this.name);
      connection = this.#live() ?? (await this.#connect());
    } catch (error) {
      if (secretFirstField) fields[0]!.fill(0);
      throw error;
    }
    return connection.request(op, fields, secretFirstField, timeoutMs);
  }

  #requestTimeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 10_000;
  }

  #live(): AgentConnection | undefined {
    const current = this.#connection;
    return current && !current.lost ? current : undefined;
  }

  /** A new greeted connection; callers arriving meanwhile share it. After a refused PIN, none (see #refused). */
  async #connect(): Promise<AgentConnection> {
    if (this.#refused) throw this.#refused;
    this.#connecting ??= this.#dialAndGreet().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #dialAndGreet(): Promise<AgentConnection> {
    const connection = await AgentConnection.dial(this.name, this.#options, (lost, error) => this.#lost(lost, error));
    this.#open.add(connection);
    try {
      if (this.#closed) throw closedError(this.name);
      await this.#greet(connection);
      if (this.#closed) throw closedError(this.name);
      if (connection.lost) throw connectionLost(this.name);
    } catch (error) {
      const failure = error instanceof Error ? error : connectionLost(this.name);
      connection.close(failure);
      // Requests waiting for a place would each dial again: they fail with this one, as when a connection is lost.
      this.#failWaiting(failure);
      throw error;
    }
    this.#connection = connection;
    return connection;
  }

  /**
   * connect()'s handshake, on every connection before it carries a request: the agent opens its
   * token and says its session count (older agents say nothing: the default stays), then, with
   * expectedPin, whether its PIN is that one. A refusal ends the connection (the agent hangs up
   * anyway) and sticks (#refused): what waited for it fails with PIN_INCORRECT, a credentials
   * error the cluster does not probe again (slot.ts, stateAfter).
   */
  async #greet(connection: AgentConnection): Promise<void> {
    const timeoutMs = this.#requestTimeoutMs();
    const [sessions] = await connection.request(OP.connect, [], false, timeoutMs);
    if (sessions?.length === 4 && this.#options.maxInFlight === undefined) this.#limit = Math.max(1, 2 * sessions.readUInt32BE(0));
    if (!this.#expectedPin) return;
    const [answer] = await connection.request(OP.verifyPin, [Buffer.from(this.#expectedPin.exposeSecretBytes())], true, timeoutMs);
    if (!answer || answer.length !== 1) protocolError();
    if (answer[0] === 1) return;
    this.#refused = new Pkcs11Error('PIN_INCORRECT', `hsm-agent ${this.name} is logged in with another PIN than the one given`);
    connection.close(this.#refused);
    throw this.#refused;
  }

  /** A connection ended: if requests were going on it, those waiting for a place fail too. */
  #lost(connection: AgentConnection, error: Error): void {
    this.#open.delete(connection);
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    this.#failWaiting(error);
  }

  /** Fails every crypto request waiting for a place among those in flight. */
  #failWaiting(error: Error): void {
    for (let waiting = this.#takeWaiting(); waiting; waiting = this.#takeWaiting()) waiting.reject(error);
  }
}

function closedError(name: string): Pkcs11Error {
  return new Pkcs11Error('CLOSED', `HSM member ${name} has been closed`);
}

function protocolError(): never {
  throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent answered with too few fields');
}
