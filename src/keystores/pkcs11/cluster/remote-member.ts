import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CryptoError } from '../../../crypto/errors.ts';
import { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { decryptionFailed } from '../ciphertext.ts';
import { Pkcs11Error, type Pkcs11ErrorCode } from '../errors.ts';
import { checkRandomLength, type CallProgress, type HsmMember, type KeyObjectInfo, type MemberHealth, type TransportPublicKey } from './member.ts';
import { FrameReader, OP, RESPONSE_ERROR, RESPONSE_OK, encodeFrame, utf8, type Frame } from './wire.ts';

export interface RemoteMemberOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** PEM: the CA the agent's certificate must chain to, and this client's certificate and key. */
  readonly ca: Buffer | string;
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  /** The name the agent's certificate must carry (default: host). */
  readonly servername?: string;
  readonly connectTimeoutMs?: number;
  /** A request unanswered this long fails with MEMBER_TIMEOUT (default 10 s; the cluster's own bound is shorter). */
  readonly requestTimeoutMs?: number;
  /** Deadline of a key ceremony step (SO operations), ms; default 120 s. */
  readonly ceremonyTimeoutMs?: number;
  /**
   * The crypto user's PIN the agent must have logged in with (a custom key store's
   * KeyStorePassword); copied. When given, connect() fails with PIN_INCORRECT if the agent's differs.
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

interface Pending {
  resolve(fields: Buffer[]): void;
  reject(error: Error): void;
  deadline: number;
}

/** A crypto request waiting for a place among those in flight. */
interface Waiting {
  admit(): void;
  reject(error: Error): void;
}

/**
 * A cluster member served by `strongroom hsm-agent` on the HSM's host: one mutual-TLS 1.3
 * connection, requests multiplexed by id. A lost connection fails every request in flight with
 * CONNECTION_FAILED (the cluster then takes the member out); the next call reconnects.
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
  #socket: TLSSocket | undefined;
  #connecting: Promise<TLSSocket> | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #inFlight = 0;
  #limit: number;
  readonly #waiting: Waiting[] = [];
  #waitHead = 0;
  #sweep: NodeJS.Timeout | undefined;
  #corked = false;
  #closed = false;

  constructor(options: RemoteMemberOptions) {
    this.name = options.name;
    this.#options = options;
    this.#expectedPin = options.expectedPin && SecretBytes.from(options.expectedPin.exposeSecretBytes());
    this.#limit = options.maxInFlight ?? DEFAULT_IN_FLIGHT;
  }

  /** Connects; with expectedPin, also checks (in the agent, in constant time) that the agent's PIN is that one. */
  async connect(): Promise<void> {
    const [sessions] = await this.#request(OP.connect, []);
    // An agent states its session count (older agents say nothing: the default stays).
    if (sessions?.length === 4 && this.#options.maxInFlight === undefined) this.#limit = Math.max(1, 2 * sessions.readUInt32BE(0));
    if (this.#expectedPin && !(await this.verifyPin(this.#expectedPin))) {
      throw new Pkcs11Error('PIN_INCORRECT', `hsm-agent ${this.name} is logged in with another PIN than the one given`);
    }
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
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#failAll(new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`));
    if (this.#sweep) clearInterval(this.#sweep);
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
    if (this.#closed) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
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

  /** Sends one request; `secretFirstField`: the first field is a PIN copy, zeroed once the frame is written. */
  async #request(op: number, fields: Buffer[], secretFirstField = false, timeoutMs = this.#options.requestTimeoutMs ?? 10_000): Promise<Buffer[]> {
    if (this.#closed) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
    const current = this.#socket;
    const socket = current && !current.destroyed ? current : await this.#open();
    const requestId = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_fff0 ? 1 : this.#nextId + 1;
    const frame = encodeFrame(requestId, op, fields);
    if (secretFirstField) fields[0]!.fill(0);
    return new Promise<Buffer[]>((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject, deadline: Date.now() + timeoutMs });
      this.#cork(socket);
      socket.write(frame, secretFirstField ? () => frame.fill(0) : undefined);
    });
  }

  /** Requests made in one tick leave in one TLS record and one write (cork until the tick ends). */
  #cork(socket: TLSSocket): void {
    if (this.#corked) return;
    this.#corked = true;
    socket.cork();
    process.nextTick(() => {
      this.#corked = false;
      socket.uncork();
    });
  }

  async #open(): Promise<TLSSocket> {
    this.#connecting ??= this.#dial().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  #dial(): Promise<TLSSocket> {
    const options = this.#options;
    return new Promise<TLSSocket>((resolve, reject) => {
      const socket = tlsConnect({
        host: options.host,
        port: options.port,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        // An IP address is checked against the certificate's IP SANs; SNI carries host names only (RFC 6066 §3).
        ...(options.servername !== undefined || isIP(options.host) === 0 ? { servername: options.servername ?? options.host } : {}),
        minVersion: 'TLSv1.3',
        rejectUnauthorized: true,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${this.name}: connection timed out`));
      }, options.connectTimeoutMs ?? 3_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        if (this.#closed) {
          socket.destroy();
          reject(new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`));
          return;
        }
        socket.setNoDelay(true);
        this.#attach(socket);
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // Only the error's code: a TLS alert name or ECONNREFUSED, never data.
        reject(new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${this.name} unreachable (${error.code ?? 'TLS error'})`));
      });
    });
  }

  #attach(socket: TLSSocket): void {
    this.#socket = socket;
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) this.#settle(frame);
    });
    const lost = (): void => {
      if (this.#socket === socket) this.#socket = undefined;
      this.#failAll(new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${this.name}: connection lost`));
    };
    socket.on('error', lost);
    socket.on('close', lost);
    if (!this.#sweep) {
      // One timer for every request's deadline rather than one per request.
      this.#sweep = setInterval(() => this.#expire(), 250);
      this.#sweep.unref();
    }
  }

  #settle(frame: Frame): void {
    const pending = this.#pending.get(frame.requestId);
    if (!pending) return;
    this.#pending.delete(frame.requestId);
    if (frame.kind === RESPONSE_OK) pending.resolve(frame.fields);
    else if (frame.kind === RESPONSE_ERROR) pending.reject(remoteError(frame.fields));
    else pending.reject(new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent sent an unknown response kind'));
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(id);
      pending.reject(new Pkcs11Error('MEMBER_TIMEOUT', `hsm-agent ${this.name} did not answer in time`));
    }
  }

  /** Fails every request in flight and every one waiting to be sent. */
  #failAll(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const request of pending) request.reject(error);
    for (let waiting = this.#takeWaiting(); waiting; waiting = this.#takeWaiting()) waiting.reject(error);
  }
}

function remoteError(fields: Buffer[]): Error {
  const code = fields[0]?.toString('utf8') ?? 'FAILED';
  const message = fields[1]?.toString('utf8') ?? 'hsm-agent operation failed';
  if (code === 'DECRYPTION_FAILED') return decryptionFailed();
  if (code === 'CRYPTO_ERROR') return new CryptoError(message);
  return new Pkcs11Error(code as Pkcs11ErrorCode, message);
}

function protocolError(): never {
  throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent answered with too few fields');
}
