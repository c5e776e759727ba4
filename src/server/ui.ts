// The page at / and its assets: a fixed table of files (the page's own from web/ and dist/web/, the flame graph
// viewer and the d3 modules it needs from node_modules), read once and served from memory. Nothing is mapped from
// a URL to a path, so there is nothing to traverse; nothing comes from a CDN. A Content-Security-Policy keeps the
// page to its own origin (styles may be inline: d3-flame-graph injects its stylesheet).

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { packageRoot } from '../bpf/native';

/**
 * d3-flame-graph's UMD build reads d3 from the global `d3`; these are the d3 modules it uses and theirs, in an
 * order where each comes after what it needs. One script (vendor.js) concatenates them.
 */
const VENDOR_MODULES = [
  'internmap',
  'd3-array',
  'd3-color',
  'd3-interpolate',
  'd3-dispatch',
  'd3-ease',
  'd3-format',
  'd3-selection',
  'd3-timer',
  'd3-transition',
  'd3-hierarchy',
  'd3-time',
  'd3-time-format',
  'd3-scale',
] as const;

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The directory of an installed npm package (d3 packages' `exports` hide their dist/ from require.resolve). */
function packageDir(name: string, from: string): string {
  let dir = path.dirname(require.resolve(name, { paths: [from] }));
  while (!fs.existsSync(path.join(dir, 'package.json')) || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package directory of ${name}`);
    dir = up;
  }
  return dir;
}

function umdOf(name: string, from: string): Buffer {
  const dir = packageDir(name, from);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string; license?: string };
  const file = name === 'd3-flame-graph' ? 'd3-flamegraph.umd.min.js' : `${name}.min.js`;
  const code = fs.readFileSync(path.join(dir, 'dist', file));
  return Buffer.concat([Buffer.from(`/* ${name} ${pkg.version} (${pkg.license ?? 'see its package'}) */\n`), code, Buffer.from('\n')]);
}

function asset(type: string, body: Buffer): Asset {
  return { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Reads every asset (throws naming the missing file: a build step was skipped). */
export function loadAssets(root = packageRoot()): Map<string, Asset> {
  const web = path.join(root, 'web');
  const flame = packageDir('d3-flame-graph', root);
  const vendor = Buffer.concat([...VENDOR_MODULES.map((m) => umdOf(m, flame)), umdOf('d3-flame-graph', root)]);
  const appJs = path.join(root, 'dist', 'web', 'web', 'app.js');
  if (!fs.existsSync(appJs)) throw new Error(`${appJs} is missing: build the page with \`npm run build\``);
  return new Map([
    ['/', asset('text/html; charset=utf-8', fs.readFileSync(path.join(web, 'index.html')))],
    ['/assets/app.js', asset('text/javascript; charset=utf-8', fs.readFileSync(appJs))],
    ['/assets/style.css', asset('text/css; charset=utf-8', fs.readFileSync(path.join(web, 'style.css')))],
    ['/assets/vendor.js', asset('text/javascript; charset=utf-8', vendor)],
  ]);
}

function send(reply: FastifyReply, a: Asset, ifNoneMatch: string | undefined): FastifyReply {
  reply
    .header('Content-Security-Policy', CSP)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('Cache-Control', 'no-cache')
    .header('ETag', a.etag);
  if (ifNoneMatch === a.etag) return reply.code(304).send();
  return reply.type(a.type).send(a.body);
}

/** GET / and GET /assets/NAME. Assets are read when the first request comes, then kept. */
export function registerUi(app: FastifyInstance, load: () => Map<string, Asset> = loadAssets): void {
  let assets: Map<string, Asset> | undefined;
  const get = (url: string): Asset | undefined => (assets ??= load()).get(url);
  app.get('/', async (req, reply) => send(reply, get('/')!, req.headers['if-none-match']));
  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const a = get(`/assets/${req.params.name}`);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send(`no such asset: ${req.params.name}\n`);
    return send(reply, a, req.headers['if-none-match']);
  });
}
