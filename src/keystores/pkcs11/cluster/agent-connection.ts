/**
 * One mutual-TLS 1.3 connection to a `strongroom hsm-agent` (agent-server.ts): requests
 * multiplexed by id (wire.ts), each failing with MEMBER_TIMEOUT past its deadline. Which
 * connection a member's requests go on, and the handshake each new one passes first, are
 * remote-member.ts's.
 */
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CryptoError } from '../../../crypto/errors.ts';
import { decryptionFailed } from '../ciphertext.ts';
import { Pkcs11Error, type Pkcs11ErrorCode } from '../errors.ts';
import { FrameReader, RESPONSE_ERROR, RESPONSE_OK, encodeFrame, type Frame } from './wire.ts';

export interface AgentAddress {
  readonly host: string;
  readonly port: number;
  /** PEM: the CA the agent's certificate must chain to, and this client's certificate and key. */
  readonly ca: Buffer | string;
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  /** The name the agent's certificate must carry (default: host). */
  readonly servername?: string;
  readonly connectTimeoutMs?: number;
}

interface Pending {
  resolve(fields: Buffer[]): void;
  reject(error: Error): void;
  deadline: number;
}

export class AgentConnection {
  readonly #socket: TLSSocket;
  /** The member's name, for messages. */
  readonly #name: string;
  readonly #onLost: (connection: AgentConnection, error: Error) => void;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #corked = false;
  #gone = false;
  /** One timer for every request's deadline rather than one per request. */
  readonly #sweep: NodeJS.Timeout;

  private constructor(socket: TLSSocket, name: string, onLost: (connection: AgentConnection, error: Error) => void) {
    this.#socket = socket;
    this.#name = name;
    this.#onLost = onLost;
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch {
        this.close(connectionLost(name));
        return;
      }
      for (const frame of frames) this.#settle(frame);
    });
    socket.on('error', () => this.close(connectionLost(name)));
    socket.on('close', () => this.close(connectionLost(name)));
    this.#sweep = setInterval(() => this.#expire(), 250);
    this.#sweep.unref();
  }

  /** Connects (TLS 1.3, the agent's certificate checked against the CA); CONNECTION_FAILED if it cannot. */
  static dial(name: string, address: AgentAddress, onLost: (connection: AgentConnection, error: Error) => void): Promise<AgentConnection> {
    return new Promise<AgentConnection>((resolve, reject) => {
      const socket = tlsConnect({
        host: address.host,
        port: address.port,
        ca: address.ca,
        cert: address.cert,
        key: address.key,
        // An IP address is checked against the certificate's IP SANs; SNI carries host names only (RFC 6066 §3).
        ...(address.servername !== undefined || isIP(address.host) === 0 ? { servername: address.servername ?? address.host } : {}),
        minVersion: 'TLSv1.3',
        rejectUnauthorized: true,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${name}: connection timed out`));
      }, address.connectTimeoutMs ?? 3_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new AgentConnection(socket, name, onLost));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // Only the error's code: a TLS alert name or ECONNREFUSED, never data.
        reject(new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${name} unreachable (${error.code ?? 'TLS error'})`));
      });
    });
  }

  /** Lost, or closed: requests sent on it fail at once. */
  get lost(): boolean {
    return this.#gone || this.#socket.destroyed;
  }

  /** Sends one request; `secretFirstField`: the first field is a PIN copy, zeroed once the frame is written (or not sent). */
  request(op: number, fields: Buffer[], secretFirstField: boolean, timeoutMs: number): Promise<Buffer[]> {
    if (this.lost) {
      if (secretFirstField) fields[0]!.fill(0);
      return Promise.reject(connectionLost(this.#name));
    }
    const requestId = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_fff0 ? 1 : this.#nextId + 1;
    const frame = encodeFrame(requestId, op, fields);
    if (secretFirstField) fields[0]!.fill(0);
    return new Promise<Buffer[]>((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject, deadline: Date.now() + timeoutMs });
      this.#cork();
      this.#socket.write(frame, secretFirstField ? () => frame.fill(0) : undefined);
    });
  }

  /** Ends the connection: every request in flight on it fails with `error`; the member is told once. */
  close(error: Error): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#socket.destroy();
    clearInterval(this.#sweep);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const request of pending) request.reject(error);
    this.#onLost(this, error);
  }

  /** Requests made in one tick leave in one TLS record and one write (cork until the tick ends). */
  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    process.nextTick(() => {
      this.#corked = false;
      this.#socket.uncork();
    });
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
      pending.reject(new Pkcs11Error('MEMBER_TIMEOUT', `hsm-agent ${this.#name} did not answer in time`));
    }
  }
}

export function connectionLost(name: string): Pkcs11Error {
  return new Pkcs11Error('CONNECTION_FAILED', `hsm-agent ${name}: connection lost`);
}

function remoteError(fields: Buffer[]): Error {
  const code = fields[0]?.toString('utf8') ?? 'FAILED';
  const message = fields[1]?.toString('utf8') ?? 'hsm-agent operation failed';
  if (code === 'DECRYPTION_FAILED') return decryptionFailed();
  if (code === 'CRYPTO_ERROR') return new CryptoError(message);
  return new Pkcs11Error(code as Pkcs11ErrorCode, message);
}
