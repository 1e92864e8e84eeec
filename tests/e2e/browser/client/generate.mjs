// Types for the client from OpenAPI documents, several in one process (openapi-typescript's
// start-up takes seconds; the tests generate one set from the live schema and more from
// deliberately altered copies). The same as, for each pair,
//   npx openapi-typescript <schema> --default-non-nullable=false -o <output>
// (`npm run generate` runs exactly that for src/generated/api.d.ts).
//
//   node generate.mjs <schema URL or file> <output .d.ts> [<schema> <output> ...]
//   node generate.mjs -     the same arguments, as a JSON array on stdin: the tests start this
//                           process early, so that loading openapi-typescript overlaps with
//                           starting the servers, and hand it the schemas once the API is up
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { text } from "node:stream/consumers";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

// Fields that have a default stay optional: openapi-typescript 7 would otherwise make them
// required everywhere, request bodies included (TodoCreate would demand `completed`, ...).
const OPTIONS = { defaultNonNullable: false, silent: true };

let args = process.argv.slice(2);
if (args.length === 1 && args[0] === "-") args = JSON.parse(await text(process.stdin));
if (args.length === 0 || args.length % 2 !== 0) {
  console.error("usage: node generate.mjs <schema URL or file> <output .d.ts> [...] | -");
  process.exit(2);
}
for (let i = 0; i < args.length; i += 2) {
  const [schema, output] = [args[i], args[i + 1]];
  const source = /^https?:\/\//.test(schema) ? new URL(schema) : pathToFileURL(path.resolve(schema));
  const types = `${COMMENT_HEADER}${astToString(await openapiTS(source, OPTIONS))}`;
  await mkdir(path.dirname(path.resolve(output)), { recursive: true });
  await writeFile(output, types);
}
