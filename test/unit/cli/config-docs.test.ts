import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configTable } from '../../../src/shared/config.js';
import { CONFIG_SECTIONS } from '../../../src/cli/config-sections.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');

test('the README carries every configuration table exactly as the schemas print it', () => {
  for (const { title, prefix, schema } of CONFIG_SECTIONS) {
    const heading = `### ${title} configuration (\`${prefix}_*\`)`;
    assert.ok(readme.includes(heading), `README has the heading ${heading}`);
    const table = configTable(schema, prefix);
    assert.ok(
      readme.includes(table),
      `README's ${title} table is out of date: paste the output of \`npm run config-docs\``,
    );
  }
});
