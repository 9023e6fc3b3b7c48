// Builds a JavaScript or TypeScript module into a component: its Durable Object class into one of
// the `durable-object-js` world (role `object`), or its Worker (`export default`) into one of the
// `front-js` world (role `front`). `opendo run` calls it in two steps, so that it can look the
// bundle up in its cache:
//
//   node build.mjs bundle <role> <source file> <bundle.js>
//   node build.mjs componentize <role> <bundle.js> <wit folder> <component.wasm>
import { fileURLToPath } from "node:url";
import path from "node:path";
import { readFile, writeFile } from "node:fs/promises";

const here = path.dirname(fileURLToPath(import.meta.url));
const toolchain = path.join(here, "toolchain", "node_modules");

// What each role bundles: the SDK the module imports as `cloudflare:workers`, the export the
// world asks for and the SDK function that makes it, and the world.
const ROLES = {
  object: { sdk: "index.js", exportName: "handler", maker: "handler.js", makerName: "handlerFor", world: "durable-object-js" },
  front: { sdk: "front-index.js", exportName: "frontHandler", maker: "front.js", makerName: "frontHandlerFor", world: "front-js" },
};

async function load(name) {
  return import(path.join(toolchain, name));
}

async function bundle(role, source, out) {
  const { build } = await load("esbuild/lib/main.js");
  const sdk = path.join(here, "src", role.sdk);
  const entry = [
    `import ${JSON.stringify(sdk)};`,
    `import * as userModule from ${JSON.stringify(path.resolve(source))};`,
    `import { ${role.makerName} } from ${JSON.stringify(path.join(here, "src", role.maker))};`,
    `export const ${role.exportName} = ${role.makerName}(userModule);`,
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

async function componentize(role, bundled, wit, out) {
  const { componentize } = await load("@bytecodealliance/componentize-js/src/componentize.js");
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: role.world,
  });
  await writeFile(out, component);
}

const [command, roleName, ...args] = process.argv.slice(2);
const role = ROLES[roleName];
try {
  if (command === "bundle" && role && args.length === 2) await bundle(role, ...args);
  else if (command === "componentize" && role && args.length === 3) await componentize(role, ...args);
  else {
    console.error("usage: node build.mjs bundle object|front <source> <bundle.js> | componentize object|front <bundle.js> <wit> <out.wasm>");
    process.exit(2);
  }
} catch (error) {
  // esbuild has already shown its errors, with their source lines.
  if (!Array.isArray(error?.errors)) console.error(String(error?.message ?? error));
  process.exit(1);
}
