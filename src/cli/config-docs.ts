/**
 * `npm run config-docs`: prints the README's configuration tables from the schemas;
 * `npm run config-docs -- --write README.md` puts them in place of the tables under their headings.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable } from '../shared/config.js';
import { CONFIG_SECTIONS } from './config-sections.js';

const heading = (title: string, prefix: string) => `### ${title} configuration (\`${prefix}_*\`)`;

const write = process.argv.indexOf('--write');
if (write < 0) {
  for (const { title, prefix, schema } of CONFIG_SECTIONS) console.log(`${heading(title, prefix)}\n\n${configTable(schema, prefix)}\n`);
} else {
  const file = process.argv[write + 1];
  if (!file) {
    console.error('--write needs the file to update (README.md)');
    process.exit(2);
  }
  let text = readFileSync(file, 'utf8');
  for (const { title, prefix, schema } of CONFIG_SECTIONS) {
    const h = heading(title, prefix);
    const at = text.indexOf(h);
    if (at < 0) {
      console.error(`${file} has no heading ${h}`);
      process.exit(1);
    }
    // The table is the run of lines starting with `|` after the heading.
    const start = text.indexOf('\n|', at) + 1;
    let end = start;
    while (text.startsWith('|', end)) end = text.indexOf('\n', end) + 1;
    text = `${text.slice(0, start)}${configTable(schema, prefix)}\n${text.slice(end)}`;
  }
  writeFileSync(file, text);
}
