#!/usr/bin/env bash
# make install-offline, inside an unpacked bundle (scripts/bundle.sh): installs with no registry
# access at all — the font from debs/, the Python packages from wheels/ (hashes checked) into .venv
# with the bundled uv — then marks the copy offline so `make run` / `make serve` never reach out.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_OFFLINE=1 UV_NO_PROGRESS=1 UV_PYTHON_DOWNLOADS=never
test -d wheels -a -x bin/uv || { echo "这里不是离线安装包（缺少 wheels/ 或 bin/uv）。" >&2; exit 1; }
sha256sum --quiet -c SHA256SUMS || { echo "安装包文件校验失败（SHA256SUMS）。" >&2; exit 1; }
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
if ! dpkg -s fonts-noto-cjk >/dev/null 2>&1 && ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
  $sudo dpkg -i debs/*.deb
fi
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
bin/uv venv --quiet --allow-existing --python "$python" .venv
bin/uv pip install --quiet --python .venv/bin/python --no-index --find-links wheels \
  --require-hashes --compile-bytecode -r requirements.txt
touch .offline
bin/uv sync --locked --no-dev --offline --quiet   # nothing left to fetch: checks the lock is met
echo "离线安装完成。启动：make run（本机）或 make serve CERT=… KEY=… HOSTS=…（局域网，见 docs/deploy.md）"
