#!/usr/bin/env bash
# The pages' sources (ui/) against the bundle committed in plugins/rule_engine/ui_dist (ADR 0016):
# install the locked packages, type-check, run the component tests, build into a temporary folder and
# compare. The api-server serves the committed bundle, so a machine without Node runs the pages; this
# check is what keeps that bundle equal to its sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../ui"
if ! command -v npm >/dev/null; then
    echo "check-ui: Node.js 20+ with npm is needed to check the UI bundle (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit
npx vitest run
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
npx vite build --outDir "$out" --emptyOutDir --logLevel warn
if ! diff -r "$out" ../plugins/rule_engine/ui_dist; then
    echo "check-ui: plugins/rule_engine/ui_dist is not what ui/ builds: run 'make ui' and commit it" >&2
    exit 1
fi
echo "check-ui: the committed bundle is a build of ui/"
