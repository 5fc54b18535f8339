#!/usr/bin/env bash
# Refreshes static/vendor/ from the msal-browser version pinned in package.json
# (installed by `npm ci`). The page loads these files from its own origin: no
# CDN (Microsoft deprecated the MSAL CDN in 3.0.0, and the redirect bridge must
# never be loaded from one). To upgrade: bump the exact version in
# package.json, `npm install`, run this script, commit static/vendor/.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=node_modules/@azure/msal-browser
if [ ! -f "$pkg/package.json" ]; then
  echo "vendor-msal: $pkg missing; run 'npm ci' first" >&2
  exit 1
fi
version=$(node -p "require('./$pkg/package.json').version")
pinned=$(node -p "require('./package.json').devDependencies['@azure/msal-browser']")
if [ "$version" != "$pinned" ]; then
  echo "vendor-msal: installed $version but package.json pins $pinned; run 'npm ci'" >&2
  exit 1
fi
common=$(node -p "require('./node_modules/@azure/msal-common/package.json').version" 2>/dev/null || echo unknown)

out=static/vendor
mkdir -p "$out"
cp "$pkg/lib/msal-browser.min.js" "$out/msal-browser.min.js"
cp "$pkg/lib/redirect-bridge/msal-redirect-bridge.min.js" "$out/msal-redirect-bridge.min.js"
cp "$pkg/LICENSE" "$out/LICENSE"

{
  echo "# Vendored msal-browser"
  echo
  echo "Copied by \`scripts/vendor-msal.sh\` from the npm package \`@azure/msal-browser@$version\`"
  echo "(bundling \`@azure/msal-common@$common\`), pinned in \`package.json\` / \`package-lock.json\`."
  echo "Licence: MIT, see \`LICENSE\` (the package's own licence file)."
  echo
  echo "| file | from the package | sha256 |"
  echo "|---|---|---|"
  for f in msal-browser.min.js:lib/msal-browser.min.js msal-redirect-bridge.min.js:lib/redirect-bridge/msal-redirect-bridge.min.js LICENSE:LICENSE; do
    name=${f%%:*}; src=${f#*:}
    echo "| \`$name\` | \`$src\` | \`$(sha256sum "$out/$name" | cut -c1-64)\` |"
  done
  echo
  echo "Both \`.js\` files are UMD builds: \`msal-browser.min.js\` defines the global \`msal\`,"
  echo "\`msal-redirect-bridge.min.js\` the global \`msalRedirectBridge\` used by \`redirect.html\`."
  echo "Do not edit them by hand; bump the version in \`package.json\`, \`npm install\`, rerun the script."
} > "$out/README.md"
echo "vendor-msal: static/vendor/ now holds msal-browser $version"
