#!/usr/bin/env bash
# make bundle: one archive for an office without internet (docs/deploy.md). It holds the app (the
# files git tracks, with the sample province), the locked runtime wheels for Linux x86-64 /
# CPython 3.11 (uv export + pip download, hashes checked), the uv binary that installs them, and
# the CJK font's .deb files (apt-get download). Run on a machine with registry access.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/cepingkanban-offline.tar.gz}
uv=${UV:-$(command -v uv)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/cepingkanban
mkdir -p "$stage/wheels" "$stage/debs" "$stage/bin"

git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$stage"
"$uv" export --locked --no-dev --no-emit-project --format requirements-txt --quiet \
  -o "$stage/requirements.txt"
# a pip outside this project's .venv (which has none); uv fetches one when no Python has it
pip=("$uv" tool run --quiet pip)
for py in $(which -a python3.11 python3 2>/dev/null); do
  if "$py" -m pip --version >/dev/null 2>&1; then pip=("$py" -m pip); break; fi
done
"${pip[@]}" download --quiet --disable-pip-version-check --require-hashes \
  --dest "$stage/wheels" --only-binary=:all: --implementation cp --python-version 3.11 \
  --abi cp311 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any \
  -r "$stage/requirements.txt"
cp "$uv" "$stage/bin/uv"
(cd "$stage/debs" && { apt-get download fonts-noto-cjk 2>/dev/null || \
  { apt-get update -qq && apt-get download fonts-noto-cjk; }; })
(cd "$stage" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)

mkdir -p "$(dirname "$out")"
tar -czf "$out" -C "$work" cepingkanban
echo "已生成离线安装包 $out（$(du -h "$out" | cut -f1)）"
