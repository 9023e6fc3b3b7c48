// Builds a JavaScript or TypeScript Durable Object into a component of the `durable-object`
// world. `opendo run` calls it in two steps, so that it can look the bundle up in its cache:
//
//   node build.mjs bundle <source file> <bundle.js>
//   node build.mjs componentize <bundle.js> <wit folder> <component.wasm>
import { fileURLToPath } from "node:url";
import path from "node:path";
import { readFile, writeFile } from "node:fs/promises";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.join(here, "src", "index.js");
const toolchain = path.join(here, "toolchain", "node_modules");

async function load(name) {
  return import(path.join(toolchain, name));
}

async function bundle(source, out) {
  const { build } = await load("esbuild/lib/main.js");
  const entry = [
    `import ${JSON.stringify(sdk)};`,
    `import * as objectModule from ${JSON.stringify(path.resolve(source))};`,
    `import { handlerFor } from ${JSON.stringify(path.join(here, "src", "handler.js"))};`,
    `export const handler = handlerFor(objectModule);`,
  ].join("\n");
  const result = await build({
    stdin: { contents: entry, resolveDir: path.dirname(path.resolve(source)), sourcefile: "opendo-entry.js" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    alias: { "cloudflare:workers": sdk, "@open-do/workers": sdk },
    external: ["opendo:*", "wasi:*"],
    // As Wrangler's default rules: an imported .html or .txt file is its text.
    loader: { ".html": "text", ".txt": "text" },
    outfile: out,
    logLevel: "error",
    legalComments: "none",
  });
  if (result.errors.length > 0) process.exit(1);
}

async function componentize(bundled, wit, out) {
  const { componentize } = await load("@bytecodealliance/componentize-js/src/componentize.js");
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: "durable-object-js",
  });
  await writeFile(out, component);
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "bundle" && args.length === 2) await bundle(...args);
  else if (command === "componentize" && args.length === 3) await componentize(...args);
  else {
    console.error("usage: node build.mjs bundle <source> <bundle.js> | componentize <bundle.js> <wit> <out.wasm>");
    process.exit(2);
  }
} catch (error) {
  // esbuild has already shown its errors, with their source lines.
  if (!Array.isArray(error?.errors)) console.error(String(error?.message ?? error));
  process.exit(1);
}
