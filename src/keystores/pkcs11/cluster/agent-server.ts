import { createServer, type Server, type TLSSocket } from 'node:tls';
import { CryptoError } from '../../../crypto/errors.ts';
import { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';
import { NOT_NOW, transportKeyFingerprint, type HsmMember } from './member.ts';
import { FrameReader, OP, RESPONSE_ERROR, RESPONSE_OK, encodeFrame, utf8, type Frame } from './wire.ts';

export interface HsmAgentServerOptions {
  readonly member: HsmMember;
  readonly host: string;
  readonly port: number;
  /** PEM: the agent's certificate and key, and the CA that client certificates must chain to. */
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  readonly ca: Buffer | string;
  /**
   * Requests in flight per connection before further ones are refused as busy (POOL_TIMEOUT;
   * default 256). A node keeps its own below this (remote-member.ts), so refusals mean many nodes.
   */
  readonly maxInFlight?: number;
  readonly maxConnections?: number;
  /** Called once per refused connection or protocol error, with no secrets (for the agent's log). */
  readonly onEvent?: (event: { kind: string; detail: string }) => void;
}

/**
 * `strongroom hsm-agent`'s server: one HsmMember (normally a LocalHsmMember holding the token's
 * sessions) served over TLS 1.3 with client certificates required and checked against the CA.
 * A client that cannot present one is dropped in the handshake (rejectUnauthorized).
 */
export class HsmAgentServer {
  readonly #server: Server;
  readonly #options: HsmAgentServerOptions;
  readonly #sockets = new Set<TLSSocket>();

  private constructor(options: HsmAgentServerOptions) {
    this.#options = options;
    this.#server = createServer(
      {
        cert: options.cert,
        key: options.key,
        ca: options.ca,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
        handshakeTimeout: 10_000,
      },
      (socket) => this.#serve(socket),
    );
    this.#server.maxConnections = options.maxConnections ?? 64;
    this.#server.on('tlsClientError', (error) => options.onEvent?.({ kind: 'tls-refused', detail: error.message }));
  }

  static async listen(options: HsmAgentServerOptions): Promise<HsmAgentServer> {
    const agent = new HsmAgentServer(options);
    await new Promise<void>((resolve, reject) => {
      agent.#server.once('error', reject);
      agent.#server.listen(options.port, options.host, () => {
        agent.#server.off('error', reject);
        resolve();
      });
    });
    return agent;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #serve(socket: TLSSocket): void {
    this.#sockets.add(socket);
    const reader = new FrameReader();
    let inFlight = 0;
    let corked = false;
    const maxInFlight = this.#options.maxInFlight ?? 256;
    // Answers completed in one tick leave in one TLS record and one write.
    const send = (response: Buffer): void => {
      if (socket.destroyed) return;
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      socket.write(response);
    };
    /** Set once a refused PIN has ended the connection: frames still arriving are not answered. */
    let closing = false;
    socket.setNoDelay(true);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        this.#options.onEvent?.({ kind: 'protocol-error', detail: error instanceof Error ? error.message : 'bad frame' });
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (closing) return;
        if (inFlight >= maxInFlight) {
          send(encodeFrame(frame.requestId, RESPONSE_ERROR, [utf8('POOL_TIMEOUT'), utf8('hsm-agent is busy')]));
          continue;
        }
        inFlight++;
        void this.#answer(frame).then(({ response, hangUp }) => {
          inFlight--;
          send(response);
          // A refused PIN ends the connection: one guess per mutual-TLS handshake, never a stream of them.
          if (hangUp) {
            closing = true;
            socket.end();
          }
        });
      }
    });
  }

  async #answer(frame: Frame): Promise<{ response: Buffer; hangUp: boolean }> {
    try {
      const fields = await this.#dispatch(frame.kind, frame.fields);
      const refused = frame.kind === OP.verifyPin && fields[0]?.[0] === 0;
      if (refused) this.#options.onEvent?.({ kind: 'pin-verification-failed', detail: 'a client named a PIN other than this member\'s; connection closed' });
      return { response: encodeFrame(frame.requestId, RESPONSE_OK, fields), hangUp: refused };
    } catch (error) {
      const [code, message] = describeError(error);
      return { response: encodeFrame(frame.requestId, RESPONSE_ERROR, [utf8(code), utf8(message)]), hangUp: false };
    }
  }

  async #dispatch(op: number, fields: Buffer[]): Promise<Buffer[]> {
    const member = this.#options.member;
    const field = (index: number): Buffer => {
      const value = fields[index];
      if (value === undefined) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent request is missing a field');
      return value;
    };
    switch (op) {
      case OP.connect: {
        await member.connect();
        // The session count: a client keeps at most twice as many requests in flight (remote-member.ts).
        if (member.sessions === undefined) return [];
        const sessions = Buffer.alloc(4);
        sessions.writeUInt32BE(member.sessions, 0);
        return [sessions];
      }
      case OP.health: {
        const health = await member.health();
        const keyProtection = health.clusterKeyProtected === undefined ? Buffer.alloc(0) : Buffer.from([health.clusterKeyProtected ? 1 : 0]);
        return [Buffer.from([health.ok ? 1 : 0]), utf8(health.code ?? ''), utf8(health.clusterId ?? ''), keyProtection];
      }
      case OP.generateAesKey:
        await member.generateAesKey(field(0), field(1).toString('utf8'));
        return [];
      case OP.wrap:
        return [await member.wrap(field(0))];
      case OP.unwrap:
        await member.unwrap(field(0), field(1).toString('utf8'), field(2));
        return [];
      case OP.encrypt: {
        // At once when the member can (an inline token with a session free), else queued for a session.
        const done = member.encryptNow ? member.encryptNow(field(0), field(1), field(2), field(3)) : NOT_NOW;
        return [done !== NOT_NOW ? done : await member.encrypt(field(0), field(1), field(2), field(3))];
      }
      case OP.decrypt: {
        const done = member.decryptNow ? member.decryptNow(field(0), field(1), field(2), field(3)) : NOT_NOW;
        return [done !== NOT_NOW ? done : await member.decrypt(field(0), field(1), field(2), field(3))];
      }
      case OP.destroy:
        return [Buffer.from([(await member.destroy(field(0))) ? 1 : 0])];
      case OP.generateRandom: {
        const length = field(0);
        if (length.length !== 4) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent random length is 4 bytes');
        return [await member.generateRandom(length.readUInt32BE(0))];
      }
      case OP.listObjects:
        return (await member.listObjects()).flatMap((object) => [object.objectId, utf8(object.label)]);
      case OP.verifyPin:
        return withPin(field(0), async (pin) => {
          if (!member.verifyPin) throw new Pkcs11Error('NOT_SUPPORTED', 'this hsm-agent member cannot check a PIN');
          return [Buffer.from([(await member.verifyPin(pin)) ? 1 : 0])];
        });
      case OP.createClusterKey:
        return withPin(field(0), async (pin) => {
          await member.createClusterKey(pin, field(1).toString('utf8'));
          return [];
        });
      case OP.beginJoin:
        return withPin(field(0), async (pin) => {
          const transport = await member.beginJoin(pin);
          this.#options.onEvent?.({ kind: 'ceremony-transport-key-generated', detail: transportKeyFingerprint(transport) });
          return [transport.modulus, transport.exponent];
        });
      case OP.wrapClusterKeyFor:
        return withPin(field(0), async (pin) => {
          const transport = { modulus: field(1), exponent: field(2) };
          this.#options.onEvent?.({ kind: 'ceremony-cluster-key-wrapped-for', detail: transportKeyFingerprint(transport) });
          return [await member.wrapClusterKeyFor(pin, transport)];
        });
      case OP.completeJoin:
        return withPin(field(0), async (pin) => {
          await member.completeJoin(pin, field(1).toString('utf8'), field(2));
          return [];
        });
      default:
        throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent does not know this operation');
    }
  }
}

/** A PIN (SO PIN, or the user PIN to verify) arrives in a frame field: copied into SecretBytes, the field zeroed, the copy zeroed after. */
async function withPin<T>(field: Buffer, fn: (pin: SecretBytes) => Promise<T>): Promise<T> {
  const pin = SecretBytes.from(field);
  field.fill(0);
  try {
    return await fn(pin);
  } finally {
    pin.zero();
  }
}

/** Only codes and the fixed messages of our own errors travel back; anything else is FAILED. */
function describeError(error: unknown): [string, string] {
  if (error instanceof CryptoError) return error.message === 'decryption failed' ? ['DECRYPTION_FAILED', 'decryption failed'] : ['CRYPTO_ERROR', error.message];
  if (error instanceof Pkcs11Error) return [error.code, error.message];
  return ['FAILED', 'hsm-agent operation failed'];
}
