// deploy/ as a cluster receives it: `kubectl kustomize` (offline) over a copy of deploy/ whose secrets/ were made by
// scripts/make-secrets.sh, as an operator does; and a check of each object against the Kubernetes schemas
// (npm kubernetes-models: the API's OpenAPI types and validators) that also refuses fields the schema does not
// know, as `kubectl apply`'s strict field validation does.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/go-toolchains';
import { makeSecrets } from '../support/tls';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: any };

export const DEPLOY = path.join(repoRoot(), 'deploy');

export function parseYaml(text: string, what: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      assert.equal(d.errors.length, 0, `${what}: ${d.errors.join('; ')}`);
      return d.toJS() as K8sObject;
    })
    .filter((o) => o !== null);
}

export interface Rendered {
  objects: K8sObject[];
  /** The copy of deploy/ rendered, with secrets/ as scripts/make-secrets.sh wrote it (certificates, token). */
  dir: string;
  secrets: string;
}

const rendered = new Map<string, Rendered>();

/**
 * `kubectl kustomize` of deploy/ with fresh secrets (once per test process and set of components), with the
 * optional components (e.g. 'kube-api') turned on as the operator does: listed under `components:`.
 */
export function renderDeploy(components: readonly string[] = []): Rendered {
  const key = components.join(',');
  const done = rendered.get(key);
  if (done) return done;
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qf-deploy-')), 'deploy');
  fs.cpSync(DEPLOY, dir, { recursive: true, filter: (src) => !src.startsWith(path.join(DEPLOY, 'secrets')) });
  if (components.length > 0) fs.appendFileSync(path.join(dir, 'kustomization.yaml'), `components:\n${components.map((c) => `  - ${c}\n`).join('')}`);
  const secrets = path.join(dir, 'secrets');
  makeSecrets(secrets);
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `kubectl: ${r.error?.message} (scripts/install-system-deps.sh installs kubernetes-client)`);
  assert.equal(r.status, 0, `kubectl kustomize deploy/: ${r.stderr}`);
  const result = { objects: parseYaml(r.stdout, 'kubectl kustomize deploy/'), dir, secrets };
  rendered.set(key, result);
  return result;
}

export function find(objects: readonly K8sObject[], kind: string, name = 'quietflame'): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `no ${kind}/${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

/** The kubernetes-models module of an object's group/version, e.g. kubernetes-models/apps/v1. */
function modelModule(apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}`;
  return `kubernetes-models/${group ? `${group}/` : ''}${version}`;
}

// kubernetes-models is ESM only and these tests are compiled to CommonJS, where TypeScript would turn import()
// into require(): keep a real dynamic import.
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<Record<string, any>>;

/**
 * Validates every object against its schema, and type-checks them all as object literals of the models' types so
 * that a field the API does not know (a typo such as `capabilites`) fails as well: the JSON schemas allow unknown
 * fields, the API server's strict field validation does not. Throws with every problem found.
 */
export async function validateObjects(objects: readonly K8sObject[]): Promise<void> {
  const problems: string[] = [];
  for (const o of objects) {
    const models = await importEsm(modelModule(o.apiVersion));
    const Model = models[o.kind];
    if (typeof Model !== 'function') {
      problems.push(`${o.apiVersion} ${o.kind}: no such kind in ${modelModule(o.apiVersion)}`);
      continue;
    }
    try {
      new Model(withoutWrappedBase64(o)).validate();
    } catch (e) {
      problems.push(`${o.kind}/${o.metadata.name}: ${(e as Error).message}`);
    }
  }
  problems.push(...unknownFields(objects));
  assert.deepEqual(problems, [], problems.join('\n'));
}

/**
 * kubectl kustomize wraps a Secret's long base64 values over lines; the API server decodes them with Go's base64,
 * which skips newlines, while the schema's "byte" format does not allow them. Compare what the server sees.
 */
function withoutWrappedBase64(o: K8sObject): K8sObject {
  if (o.kind !== 'Secret' || !o['data']) return o;
  return { ...o, data: Object.fromEntries(Object.entries(o['data'] as Record<string, string>).map(([k, v]) => [k, v.replace(/[\r\n]/g, '')])) };
}

function unknownFields(objects: readonly K8sObject[]): string[] {
  const dir = path.join(repoRoot(), '.cache', 'manifest-types');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `objects-${process.pid}.ts`);
  const lines = objects.map((o, i) => {
    const module = `${modelModule(o.apiVersion)}/${o.kind}`;
    return `import type { I${o.kind} as T${i} } from ${JSON.stringify(module)};\nexport const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`;
  });
  fs.writeFileSync(file, lines.join('\n') + '\n');
  try {
    const program = ts.createProgram([file], { strict: true, noEmit: true, moduleResolution: ts.ModuleResolutionKind.Node10, module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      const line = where && d.file ? d.file.text.split('\n')[where.line]!.trim() : '';
      return `unknown or mistyped field near ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
  } finally {
    fs.rmSync(file, { force: true });
  }
}
