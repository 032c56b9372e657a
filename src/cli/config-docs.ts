/** `npm run config-docs`: prints the README's configuration tables from the schemas. */
import { configTable } from '../shared/config.js';
import { CONFIG_SECTIONS } from './config-sections.js';

for (const { title, prefix, schema } of CONFIG_SECTIONS) {
  console.log(`### ${title} configuration (\`${prefix}_*\`)\n\n${configTable(schema, prefix)}\n`);
}
