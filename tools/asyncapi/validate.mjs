// Validates an AsyncAPI document with the official parser (@asyncapi/parser) and its default
// ruleset, the same checks AsyncAPI Studio and the AsyncAPI CLI run.
//
// Usage: node validate.mjs [document.json]   (reads standard input when no path is given)
//
// Prints every diagnostic as one JSON object on standard output. Exits 0 when no diagnostic
// has severity error (0), 1 when at least one has, and 2 when the document could not be read.
// Warnings (1), information (2) and hints (3) are printed but do not change the exit status:
// callers decide how strict to be about them.

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";

const SEVERITY_ERROR = 0;
const SEVERITY_NAMES = ["error", "warning", "information", "hint"];
const EXIT_VALID = 0;
const EXIT_INVALID = 1;
const EXIT_UNREADABLE = 2;

async function readStandardInput() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function readDocument(path) {
  if (path === undefined || path === "-") {
    return { text: await readStandardInput(), source: undefined };
  }
  // An absolute source lets the parser resolve relative references against the file.
  const source = resolve(path);
  return { text: await readFile(source, "utf8"), source };
}

function describe(diagnostic) {
  return {
    code: diagnostic.code,
    severity: diagnostic.severity,
    severityName: SEVERITY_NAMES[diagnostic.severity] ?? "unknown",
    message: diagnostic.message,
    path: diagnostic.path ?? [],
    range: diagnostic.range,
  };
}

async function main() {
  let document;
  try {
    document = await readDocument(process.argv[2]);
  } catch (error) {
    process.stderr.write(`could not read the AsyncAPI document: ${error.message}\n`);
    return EXIT_UNREADABLE;
  }
  const parser = new Parser();
  // `parse` runs `validate` first and then builds the document model, which also parses
  // every message payload schema: problems only that second step finds are diagnostics too.
  const { document: parsed, diagnostics } = await parser.parse(document.text, {
    source: document.source,
  });
  const described = diagnostics.map(describe);
  const errors = described.filter((diagnostic) => diagnostic.severity === SEVERITY_ERROR);
  const report = {
    parserVersion: await installedParserVersion(),
    parsed: parsed !== undefined,
    errorCount: errors.length,
    diagnostics: described,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return errors.length === 0 && parsed !== undefined ? EXIT_VALID : EXIT_INVALID;
}

async function installedParserVersion() {
  // The version actually installed, so that a report can be reproduced elsewhere.
  const manifest = new URL("./node_modules/@asyncapi/parser/package.json", import.meta.url);
  return JSON.parse(await readFile(manifest, "utf8")).version;
}

process.exitCode = await main();
