// The baseline: a bare node:http JSON echo server on node:cluster, as many worker processes as
// Strongroom gets (default 2). Each request: read the body, JSON.parse it, answer a small JSON
// document with the KMS content type. No auth, no crypto, no storage: the ceiling that node:http
// itself allows on this machine.
//
//   node bench/bare-server.mjs --port 18374 [--host 127.0.0.1] [--workers 2]
//
// Prints "listening on http://host:port" once every worker is listening; SIGTERM/SIGINT stop it.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '18374' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '2' },
  },
});
const port = Number(values.port);
const host = values.host;
const workers = Number(values.workers);

if (cluster.isPrimary) {
  let ready = 0;
  let stopping = false;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    worker.on('message', (message) => {
      if (message === 'listening' && ++ready === workers) process.stdout.write(`listening on http://${host}:${port}\n`);
    });
  }
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`bare-server: worker ${worker.process.pid} died (${signal ?? code})\n`);
      process.exit(1);
    }
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
    let alive = workers;
    cluster.on('exit', () => {
      if (--alive === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let payload;
      let status = 200;
      try {
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        payload = JSON.stringify({ KeyId: input.KeyId ?? null, Fields: Object.keys(input).length });
      } catch {
        status = 400;
        payload = JSON.stringify({ __type: 'SerializationException', message: 'The request body is not valid JSON.' });
      }
      res.writeHead(status, {
        'Content-Type': 'application/x-amz-json-1.1',
        'Content-Length': Buffer.byteLength(payload),
      });
      res.end(payload);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, host, () => process.send?.('listening'));
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
