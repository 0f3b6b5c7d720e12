// Validates ServiceMonitor objects (JSON files named on the command line)
// against the prometheus-operator CRD schema, as compiled by the npm package
// @kubernetes-models/prometheus-operator (types, enums, patterns, required
// fields). Kubernetes' own schemas (kubernetes-validate) do not know this CRD.
// Exit status 1 naming each invalid object.
import { readFileSync } from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

let failed = 0;
for (const file of process.argv.slice(2)) {
  const data = JSON.parse(readFileSync(file, "utf8"));
  if (data.apiVersion !== ServiceMonitor.apiVersion || data.kind !== ServiceMonitor.kind) {
    console.error(`${file}: not a ${ServiceMonitor.apiVersion} ServiceMonitor`);
    failed++;
    continue;
  }
  try {
    new ServiceMonitor(data).validate();
    console.log(`${file}: ServiceMonitor ${data.metadata?.name} valid`);
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
