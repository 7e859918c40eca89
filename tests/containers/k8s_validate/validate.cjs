'use strict';
// Offline validation of Kubernetes manifests, run by tests/containers with
// the packages of package-lock.json installed next to this file (npm ci).
//
//   node validate.cjs FILE.yaml...
//
// Prints one JSON array: for every YAML document {file, index, apiVersion,
// kind, name, errors, object} (object: the document as JSON, for the checks
// the test makes itself). Two checks per document:
//  1. schema: the kubernetes-models class for apiVersion/kind validates it
//     (types, required fields, enums: what the API server's schema checks);
//  2. fields: every key is a field of the Kubernetes type at that place,
//     read from the models' TypeScript declarations, because the schema
//     check above accepts unknown keys (a misspelled `livenesProbe` passes).
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const NODE_MODULES = path.join(__dirname, 'node_modules');
const MODELS = path.join(NODE_MODULES, 'kubernetes-models');

function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
  // "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1
  const dir = path.join(MODELS, ...apiVersion.split('/'));
  if (!fs.existsSync(path.join(dir, kind + '.js'))) return null;
  const mod = require(path.join(dir, kind + '.js'));
  return { cls: mod[kind], dts: path.join(dir, kind + '.d.ts') };
}

// --- TypeScript declarations: the fields of an interface --------------------

const declCache = new Map();

// Parse the interface declared first in a .d.ts file: its properties and
// their type text, and the files its imported names come from. Returns null
// for files that declare only a type alias (IntOrString, Quantity: scalars).
function readDecl(file) {
  if (declCache.has(file)) return declCache.get(file);
  const text = fs.readFileSync(file, 'utf8');
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    const base = spec.startsWith('.') ? path.resolve(path.dirname(file), spec)
                                      : path.join(NODE_MODULES, spec);
    for (const name of m[1].split(',').map((s) => s.trim()))
      imports.set(name, base + '.d.ts');
  }
  const start = text.search(/^export interface \w+[^{]*\{$/m);
  if (start < 0) {
    declCache.set(file, null);
    return null;
  }
  const open = text.indexOf('{', start);
  const props = new Map();
  let depth = 0;
  let i = open;
  let body = '';
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (depth === 0) break;
    body += c;
  }
  // Drop comments, then split the body at depth-1 semicolons.
  body = body.slice(1).replace(/\/\*[\s\S]*?\*\//g, '');
  let cur = '';
  depth = 0;
  for (const c of body) {
    if (c === '{' || c === '<') depth++;
    if (c === '}' || c === '>') depth--;
    if (c === ';' && depth === 0) {
      const m = cur.trim().match(/^"([^"]+)"\??:\s*([\s\S]+)$/);
      if (m) props.set(m[1], m[2].trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  const decl = { props, imports };
  declCache.set(file, decl);
  return decl;
}

// Check `value` against the type text `type` found in `decl`'s file.
function checkType(value, type, decl, where, errors) {
  if (value === null || value === undefined) return;
  let m = type.match(/^Array<([\s\S]+)>$/);
  if (m) {
    if (Array.isArray(value))
      value.forEach((v, k) => checkType(v, m[1].trim(), decl, `${where}[${k}]`, errors));
    return;
  }
  m = type.match(/^\{\s*\[key: string\]:\s*([\s\S]+?);?\s*\}$/);
  if (m) {
    if (value && typeof value === 'object' && !Array.isArray(value))
      for (const [k, v] of Object.entries(value))
        checkType(v, m[1].trim(), decl, `${where}.${k}`, errors);
    return;
  }
  if (/^\w+$/.test(type) && decl.imports.has(type)) {
    const target = readDecl(decl.imports.get(type));
    if (target && value && typeof value === 'object' && !Array.isArray(value))
      checkFields(value, target, where, errors);
  }
  // Anything else (strings, numbers, unions, inline object types) is left
  // to the schema check.
}

function checkFields(obj, decl, where, errors) {
  for (const [key, value] of Object.entries(obj)) {
    const here = where ? `${where}.${key}` : key;
    if (!decl.props.has(key)) {
      errors.push(`${here}: unknown field`);
      continue;
    }
    checkType(value, decl.props.get(key), decl, here, errors);
  }
}

// --- main -------------------------------------------------------------------

const results = [];
for (const file of process.argv.slice(2)) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  docs.forEach((doc, index) => {
    const errors = doc.errors.map((e) => `yaml: ${e.message}`);
    const obj = doc.toJS();
    const meta = (obj && obj.metadata) || {};
    const entry = {
      file, index,
      apiVersion: (obj && obj.apiVersion) ?? null, kind: (obj && obj.kind) ?? null,
      name: meta.name ?? null, errors, object: obj ?? null,
    };
    results.push(entry);
    if (errors.length) return;
    if (obj === null || typeof obj !== 'object') {
      errors.push('document is not a mapping');
      return;
    }
    const model = modelClass(obj.apiVersion, obj.kind);
    if (!model) {
      errors.push(`no model for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
      return;
    }
    try {
      new model.cls(obj).validate();
    } catch (e) {
      if (Array.isArray(e.errors) && e.errors.length)
        for (const d of e.errors) errors.push(`schema: ${d.instancePath || '/'} ${d.message}`);
      else errors.push(`schema: ${e.message}`);
    }
    const decl = readDecl(model.dts);
    if (!decl) errors.push(`cannot read the declaration of ${obj.kind}`);
    else checkFields(obj, decl, '', errors);
  });
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
