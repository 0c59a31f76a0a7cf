/** `strongroom hsm-agent` as a child process on its own SoftHSM configuration, for the remote-member tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CertFiles } from './test-certs.ts';
import { SOFTHSM_MODULE, type StandaloneToken } from './softhsm.ts';

const BIN = fileURLToPath(new URL('../../bin/strongroom.mjs', import.meta.url));

export class AgentProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly stderr: () => string,
  ) {}

  /** Starts an agent and waits for its "listening on" line (port 0: a free port). */
  static async start(standalone: StandaloneToken, certs: CertFiles, port = 0): Promise<AgentProcess> {
    const child = spawn(
      process.execPath,
      [BIN, 'hsm-agent', '--module', SOFTHSM_MODULE, '--token-label', standalone.token.label, '--listen', `127.0.0.1:${port}`,
        '--tls-cert', certs.agentCert, '--tls-key', certs.agentKey, '--tls-ca', certs.ca, '--sessions', '4'],
      { env: { ...process.env, SOFTHSM2_CONF: standalone.conf, STRONGROOM_HSM_PIN: standalone.token.pin }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const listening = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`hsm-agent did not start: ${stderr}`));
      }, 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        const match = /hsm-agent listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`hsm-agent exited with ${code}: ${stderr}`));
      });
    });
    const agent = new AgentProcess(child, listening, () => stderr);
    process.on('exit', () => agent.child.kill('SIGKILL'));
    return agent;
  }

  /** Sends the signal and waits for the process to be gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    await exited;
  }
}
