#!/usr/bin/env bash
# Refreshes node/ui/vendor from the npm registry (pinned version): the charting library the
# dashboard and HTML reports embed. Run by hand when upgrading; the build never needs npm.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=1.6.32
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$ROOT/node/ui/vendor/"
echo "node/ui/vendor: uplot $VERSION"
