import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  experimentPrefix,
  loadManifestFile,
  ManifestError,
  parseDropManifest,
  parseExperimentManifest,
  parseManifestText,
  renderSchemaFiles,
  SAFE_ID,
  type DropManifest,
} from '../../src/manifest/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { checkJsonSchema } from './mini-json-schema.js';

const root = packageRoot();
const examples = join(root, 'manifests', 'examples');

function goodDrop(): Record<string, unknown> {
  return {
    schema_version: 1,
    patient_id: 'P1',
    sample_id: 'S1',
    provider: { provider_id: 'prov', patient_id: 'MRN 1' },
    reference: 'sim-demo',
    platform: 'ILLUMINA',
    read_length: 150,
    paired: true,
    read_groups: [{ id: 'rg1', r1: 'a_R1.fastq.gz', r2: 'a_R2.fastq.gz' }],
  };
}

function goodExperiment(): Record<string, unknown> {
  return { schema_version: 1, kind: 'experiment', experiment_id: 'exp1', inputs: [{ lake_path: 'raw/patient_id=P1/run_id=r1/' }] };
}

/** The ManifestError thrown by `fn`, failing the test if it throws anything else or nothing. */
function manifestError(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return e as ManifestError;
  }
  throw new Error('expected a ManifestError');
}

function issueMap(e: ManifestError): Record<string, string> {
  return Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
}

describe('drop manifests', () => {
  it('accepts a valid drop, defaulting kind', () => {
    const m = parseDropManifest(goodDrop(), 'x.json');
    expect(m.kind).toBe('drop');
    expect(m.read_groups[0].r2).toBe('a_R2.fastq.gz');
  });

  it('lists every problem by field path in one error', () => {
    const d = goodDrop();
    d.patient_id = 'P 1';
    d.read_length = '150';
    d.platform = 'illumina';
    d.pateint = 'x';
    d.read_groups = [
      { id: 'rg1', r1: 'a_R1.fastq.gz', r2: 'a_R2.fastq.gz' },
      { id: 'rg1', r1: 'b_R1.fastq.gz', lanee: 2 },
      { id: 'rg3', r1: 'a_R1.fastq.gz', r2: 'c.txt' },
    ];
    const e = manifestError(() => parseDropManifest(d, 'lab/drop.json'));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.place.file).toBe('lab/drop.json');
    const issues = issueMap(e);
    expect(Object.keys(issues).sort()).toEqual(
      [
        'patient_id',
        'read_length',
        'platform',
        'pateint',
        'read_groups[1].id',
        'read_groups[1].lanee',
        'read_groups[1].r2',
        'read_groups[2].r1',
        'read_groups[2].r2',
      ].sort(),
    );
    expect(issues['read_groups[1].r2']).toBe('required when paired is true');
    expect(issues['read_groups[1].lanee']).toMatch(/did you mean lane\?/);
    expect(issues.pateint).toMatch(/did you mean patient_id\?/);
    expect(issues.platform).toMatch(/did you mean "ILLUMINA"\?/);
    expect(issues['read_groups[1].id']).toMatch(/duplicate read group id "rg1"/);
    expect(issues['read_groups[2].r1']).toMatch(/already used by read_groups\[0\]\.r1/);
    expect(issues['read_groups[2].r2']).toMatch(/must end in \.fastq/);
    // The message itself carries every path, one per line, so a user sees them all.
    for (const path of Object.keys(issues)) expect(e.message).toContain(`\n  ${path}: `);
    expect(e.message).toMatch(/^invalid drop manifest: 9 problems/);
    expect(e.describe()).toMatch(/^lab\/drop\.json: invalid drop manifest/);
  });

  it('reports missing required fields and r2 present on single-end drops', () => {
    const d = goodDrop();
    delete d.sample_id;
    delete d.provider;
    d.paired = false;
    const issues = issueMap(manifestError(() => parseDropManifest(d, 'd.json')));
    expect(issues).toEqual({
      sample_id: 'required',
      provider: 'required',
      'read_groups[0].r2': expect.stringMatching(/must be absent when paired is false/),
    });
  });

  it('refuses ids and file names that could leave the lake root or the archive', () => {
    const escapes = ['..', '.', '../etc', 'a/b', 'a\\b', '/abs', 'patient_id=x', '_runs', '.hidden', 'x'.repeat(129), 'a b', 'C:evil', ''];
    for (const bad of escapes) {
      expect(SAFE_ID.test(bad)).toBe(false);
      for (const field of ['patient_id', 'sample_id', 'reference'] as const) {
        const d = goodDrop();
        d[field] = bad;
        expect(Object.keys(issueMap(manifestError(() => parseDropManifest(d, 'd.json'))))).toEqual([field]);
      }
      const d = goodDrop();
      (d.read_groups as Record<string, unknown>[])[0].id = bad;
      expect(Object.keys(issueMap(manifestError(() => parseDropManifest(d, 'd.json'))))).toEqual(['read_groups[0].id']);
    }
    const badFiles = ['../R1.fastq', '/etc/R1.fastq', 'a/../../R1.fastq', 'a\\R1.fastq', 'C:/R1.fastq', '.hidden.fastq', 'a//R1.fastq', 'dir/', './R1.fastq'];
    for (const bad of badFiles) {
      const d = goodDrop();
      (d.read_groups as Record<string, unknown>[])[0].r1 = bad;
      const issues = issueMap(manifestError(() => parseDropManifest(d, 'd.json')));
      expect(Object.keys(issues)).toEqual(['read_groups[0].r1']);
    }
    const e = manifestError(() => parseDropManifest({ ...goodDrop(), patient_id: '../../x' }, 'd.json'));
    expect(e.issues[0].message).toMatch(/must not contain '\/'/);
  });

  it('parses YAML and JSON text to the same manifest', () => {
    const json = JSON.stringify(goodDrop());
    const yaml = [
      'schema_version: 1',
      'patient_id: P1',
      'sample_id: S1',
      'provider: { provider_id: prov, patient_id: MRN 1 }',
      'reference: sim-demo',
      'platform: ILLUMINA',
      'read_length: 150',
      'paired: true',
      'read_groups:',
      '  - id: rg1',
      '    r1: a_R1.fastq.gz',
      '    r2: a_R2.fastq.gz',
    ].join('\n');
    const a = parseManifestText(json, 'm.json');
    expect(parseManifestText(yaml, 'm.yaml')).toEqual(a);
    expect(parseManifestText(yaml, 'm.yml')).toEqual(a);
    // Without a telling extension the content decides.
    expect(parseManifestText(yaml, 'manifest')).toEqual(a);
    expect(parseManifestText(json, 'manifest')).toEqual(a);
  });

  it('hints at YAML quoting when a YAML value turned into a number', () => {
    const yaml = `schema_version: 1\npatient_id: 007\nsample_id: S1\nprovider: {provider_id: p, patient_id: x}\nreference: r\nplatform: ONT\nread_length: 100\npaired: false\nread_groups: [{id: a, r1: a.fq}]\n`;
    const e = manifestError(() => parseManifestText(yaml, 'm.yaml'));
    expect(issueMap(e)).toEqual({ patient_id: expect.stringMatching(/must be a string \(got 7\).*quote/) });
  });

  it('names the line and column of JSON and YAML syntax errors', () => {
    const j = manifestError(() => parseManifestText('{\n  "schema_version": 1,\n  "patient_id": "P1",\n}\n', 'm.json'));
    expect(j.code).toBe('MANIFEST_SYNTAX');
    expect([j.line, j.column]).toEqual([4, 1]);
    expect(j.message).toMatch(/JSON syntax error at line 4, column 1: trailing comma/);

    const j2 = manifestError(() => parseManifestText('{"a": 1 "b": 2}', 'm.json'));
    expect([j2.line, j2.column]).toEqual([1, 9]);

    const y = manifestError(() => parseManifestText('schema_version: 1\npatient_id: P1\npatient_id: P2\n', 'm.yaml'));
    expect(y.code).toBe('MANIFEST_SYNTAX');
    expect(y.line).toBe(3);
    expect(y.message).toMatch(/YAML syntax error at line 3, column \d+: Map keys must be unique/);

    const y2 = manifestError(() => parseManifestText('a: [1, 2\nb: 3\n', 'm.yaml'));
    expect(y2.line).toBe(2);

    expect(manifestError(() => parseManifestText('  \n', 'm.json')).message).toMatch(/empty/);
    expect(issueMap(manifestError(() => parseManifestText('- 1\n- 2\n', 'm.yaml')))).toEqual({ '(root)': expect.stringMatching(/must be an object/) });
  });

  it('refuses YAML alias bombs', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    const e = manifestError(() => parseManifestText(`${lines.join('\n')}\n`, 'bomb.yaml'));
    expect(e.code).toBe('MANIFEST_SYNTAX');
  });

  it('dispatches on kind and suggests the kind meant', () => {
    expect(parseManifestText(JSON.stringify(goodExperiment()), 'e.json').kind).toBe('experiment');
    expect(parseManifestText(JSON.stringify({ ...goodDrop(), kind: 'drop' }), 'd.json').kind).toBe('drop');
    const e = manifestError(() => parseManifestText(JSON.stringify({ ...goodExperiment(), kind: 'experimnt' }), 'e.json'));
    expect(issueMap(e)).toEqual({ kind: expect.stringMatching(/did you mean "experiment"\?/) });
  });
});

describe('experiment manifests', () => {
  it('lists every problem by path, refusing lake paths that escape', () => {
    const x = {
      ...goodExperiment(),
      experiment_id: '../prod',
      inputs: [
        { lake_path: 'raw/../_runs' },
        { lake_path: '/etc' },
        { lake_path: '_staging/x' },
        { lake_path: 's3://other/raw' },
        { archive: 'drop.rar' },
        { lake_path: 'raw/a', archive: 'b.zip' },
        { lake_path: 'raw/patient_id=P1/run_id=r1' },
        { lake_path: 'raw/patient_id=P1/run_id=r1/' },
      ],
      stages: { align: { params: { seed_lenght: 20 } }, cal: {} },
    };
    const e = manifestError(() => parseExperimentManifest(x, 'exp.json'));
    const issues = issueMap(e);
    expect(Object.keys(issues).sort()).toEqual(
      [
        'experiment_id',
        'inputs[0].lake_path',
        'inputs[1].lake_path',
        'inputs[2].lake_path',
        'inputs[3].lake_path',
        'inputs[4].archive',
        'inputs[5]',
        'inputs[7]',
        'stages.align.params.seed_lenght',
        'stages.cal',
      ].sort(),
    );
    expect(issues['inputs[7]']).toBe('same input as inputs[6]');
    expect(issues['stages.cal']).toMatch(/did you mean call\?/);
    expect(issues['inputs[0].lake_path']).toMatch(/'\.\.'/);
  });

  it('builds the experiment prefix only from a safe id', () => {
    expect(experimentPrefix({ experiment_id: 'exp1' })).toBe('experimental/exp1/');
    expect(() => experimentPrefix({ experiment_id: '../x' })).toThrow(/experiment_id/);
  });
});

describe('published JSON Schemas and examples', () => {
  it('committed schema files equal the generated ones (run `node dist/src/manifest/schemas.js` after changing a schema)', async () => {
    for (const [name, text] of Object.entries(renderSchemaFiles())) {
      expect(await readFile(join(root, 'manifests', name), 'utf8'), name).toBe(text);
    }
  });

  const cases = [
    ['drop.json', 'drop', 'drop.schema.json'],
    ['drop.yaml', 'drop', 'drop.schema.json'],
    ['experiment.json', 'experiment', 'experiment.schema.json'],
  ] as const;

  for (const [file, kind, schemaFile] of cases) {
    it(`examples/${file} validates with zod and with ${schemaFile}`, async () => {
      const path = join(examples, file);
      const m = await loadManifestFile(path);
      expect(m.kind).toBe(kind);
      const text = await readFile(path, 'utf8');
      const data: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      const schema = JSON.parse(await readFile(join(root, 'manifests', schemaFile), 'utf8')) as Record<string, unknown>;
      expect(checkJsonSchema(schema, data)).toEqual([]);
    });
  }

  it('the JSON Schema refuses what zod refuses for the same reasons', async () => {
    const schema = JSON.parse(await readFile(join(root, 'manifests', 'drop.schema.json'), 'utf8')) as Record<string, unknown>;
    const base = goodDrop();
    expect(checkJsonSchema(schema, base)).toEqual([]);
    const { sample_id: _drop, ...noSample } = base;
    expect(checkJsonSchema(schema, noSample)).toContain('$.sample_id: required');
    expect(checkJsonSchema(schema, { ...base, patient_id: '../x' })).toContain('$.patient_id: pattern');
    expect(checkJsonSchema(schema, { ...base, extra: 1 })).toContain('$.extra: additionalProperties');
    const unpaired = { ...base, read_groups: [{ id: 'a', r1: 'a.fq' }] };
    expect(checkJsonSchema(schema, unpaired).length).toBeGreaterThan(0);
    expect(() => parseDropManifest(unpaired, 'x')).toThrow(ManifestError);
    const badFile = { ...base, read_groups: [{ id: 'a', r1: '../a.fq', r2: 'b.fq' }] };
    expect(checkJsonSchema(schema, badFile)).toContain('$.read_groups[0].r1: pattern');
  });
});

describe('loadManifestFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'genolake-manifest-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads JSON and YAML files and names the file in errors', async () => {
    const good: DropManifest = parseDropManifest(goodDrop(), 'x');
    await writeFile(join(dir, 'ok.yml'), `# comment\n${Object.entries(goodDrop()).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n')}\n`);
    expect(await loadManifestFile(join(dir, 'ok.yml'))).toEqual(good);
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ ...goodDrop(), read_length: 5 }));
    await expect(loadManifestFile(join(dir, 'bad.json'))).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      place: { file: join(dir, 'bad.json') },
      issues: [{ path: 'read_length', message: 'must be at least 30 (got 5)' }],
    });
    await expect(loadManifestFile(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'MANIFEST_NOT_FOUND' });
    await writeFile(join(dir, 'huge.json'), Buffer.alloc(1024 * 1024 + 1, 0x20));
    await expect(loadManifestFile(join(dir, 'huge.json'))).rejects.toMatchObject({ code: 'MANIFEST_TOO_LARGE' });
  });
});
