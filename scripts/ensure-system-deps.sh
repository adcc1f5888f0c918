#!/usr/bin/env bash
# Makes sure the system packages the tests need are present:
#   - Debian's Chromium (/usr/bin/chromium) for the Playwright tests, which also ships SwiftShader;
#   - a Vulkan driver that Dawn (the `webgpu` npm package) accepts, for the engine tests in Node:
#     Mesa's lavapipe 25+ (bookworm-backports; Debian 12's own Mesa 22 is refused by Dawn) or
#     Chromium's SwiftShader ICD, either one with the Vulkan loader (libvulkan1);
#   - PyTorch for /usr/bin/python3 (Debian's python3-torch) for the PyTorch twin's tests
#     (python/pixelvae_torch; $PIXELVAE_PYTHON names another interpreter that has torch).
# Idempotent and quick when everything is there (it only looks at files). When something is missing
# it installs it with apt-get if run as root, and otherwise prints what to install and exits 1.
#
# For testing this script: ENSURE_DEPS_ROOT=/some/dir looks for every file under that directory
# instead of /, and ENSURE_DEPS_DRY_RUN=1 prints the commands it would run instead of running them.
set -euo pipefail

ROOT="${ENSURE_DEPS_ROOT:-}"
DRY_RUN="${ENSURE_DEPS_DRY_RUN:-0}"

CHROMIUM="$ROOT/usr/bin/chromium"
SWIFTSHADER_ICD="$ROOT/usr/lib/chromium/vk_swiftshader_icd.json"
LAVAPIPE_ICD="$ROOT/usr/share/vulkan/icd.d/lvp_icd.json"
SOURCES="$ROOT/etc/apt/sources.list.d/debian.sources"
OS_RELEASE="$ROOT/etc/os-release"
PYTHON="${PIXELVAE_PYTHON:-/usr/bin/python3}"

say() { printf 'ensure-system-deps: %s\n' "$*" >&2; }

have_libvulkan() {
  # The Vulkan loader Dawn dlopens (Chromium's private copy in /usr/lib/chromium does not count).
  local lib
  for lib in "$ROOT"/usr/lib/*-linux-gnu/libvulkan.so.1 "$ROOT"/usr/lib64/libvulkan.so.1 "$ROOT"/usr/lib/libvulkan.so.1; do
    [[ -e "$lib" ]] && return 0
  done
  return 1
}

# The lavapipe ICD's api_version: Mesa 25 reports Vulkan 1.4, Debian 12's Mesa 22 reports 1.3.
lavapipe_api_minor() {
  sed -n 's/.*"api_version"[[:space:]]*:[[:space:]]*"1\.\([0-9]*\)\..*/\1/p' "$LAVAPIPE_ICD" | head -n 1
}

lavapipe_state() {
  if [[ ! -e "$LAVAPIPE_ICD" ]]; then echo missing; return; fi
  local minor
  minor="$(lavapipe_api_minor)"
  if [[ -n "$minor" && "$minor" -ge 4 ]]; then echo ok; else echo old; fi
}

codename() {
  local name=''
  if [[ -r "$OS_RELEASE" ]]; then
    name="$(sed -n 's/^VERSION_CODENAME=//p' "$OS_RELEASE" | tr -d '"' | head -n 1)"
  fi
  echo "${name:-bookworm}"
}

problems=()
[[ -x "$CHROMIUM" ]] || problems+=("Chromium is missing ($CHROMIUM)")
have_libvulkan || problems+=("the Vulkan loader libvulkan1 is missing")
lvp="$(lavapipe_state)"
if [[ "$lvp" == old ]]; then
  # Node picks lavapipe before SwiftShader, and Dawn refuses Mesa 22's: it must be upgraded.
  problems+=("Mesa's lavapipe is too old for Dawn ($LAVAPIPE_ICD reports Vulkan $(sed -n 's/.*"api_version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$LAVAPIPE_ICD" | head -n 1); Mesa 25 needed)")
elif [[ "$lvp" == missing && ! -e "$SWIFTSHADER_ICD" ]]; then
  problems+=("no Vulkan driver Dawn accepts (neither $LAVAPIPE_ICD nor $SWIFTSHADER_ICD)")
fi

have_torch() {
  # Under ENSURE_DEPS_ROOT (tests of this script) only files count: python3-torch's package files.
  if [[ -n "$ROOT" ]]; then
    [[ -e "$ROOT/usr/lib/python3/dist-packages/torch/__init__.py" ]]
  else
    "$PYTHON" -c 'import torch' >/dev/null 2>&1
  fi
}
need_torch=0
if ! have_torch; then
  need_torch=1
  problems+=("PyTorch is missing for $PYTHON (python3 -c 'import torch' fails; the PyTorch twin's tests need it)")
fi

if [[ ${#problems[@]} -eq 0 ]]; then
  exit 0
fi

release="$(codename)"
if [[ "$release" == bookworm ]]; then
  mesa_cmd=(apt-get install -y -t bookworm-backports mesa-vulkan-drivers)
else
  mesa_cmd=(apt-get install -y mesa-vulkan-drivers)
fi

for p in "${problems[@]}"; do say "$p"; done

if [[ "$(id -u)" -ne 0 ]]; then
  {
    echo
    echo "Install these as root, then run the tests again:"
    if [[ "$release" == bookworm ]]; then
      echo "  # add bookworm-backports to the Suites: line of the first stanza of /etc/apt/sources.list.d/debian.sources"
      echo "  #   e.g. Suites: bookworm bookworm-updates bookworm-backports"
    fi
    echo "  apt-get update"
    echo "  apt-get install -y chromium libvulkan1"
    echo "  ${mesa_cmd[*]}"
    if [[ "$need_torch" == 1 ]]; then
      echo "  apt-get install -y python3-torch python3-numpy"
      echo "  # or set PIXELVAE_PYTHON to a Python 3 that has torch and numpy"
    fi
  } >&2
  exit 1
fi

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    say "would run: $*"
  else
    say "running: $*"
    "$@"
  fi
}

if [[ "$release" == bookworm ]]; then
  if [[ ! -f "$SOURCES" ]]; then
    say "cannot add bookworm-backports: $SOURCES not found; add bookworm-backports to your apt sources and rerun"
    exit 1
  fi
  # The first stanza (up to the first blank line) is Debian's main archive; add the suite there once.
  if ! awk 'BEGIN{s=1} /^[[:space:]]*$/{if (seen) s++} !/^[[:space:]]*$/{seen=1} s==1 && /^Suites:/ && /(^|[[:space:]])bookworm-backports([[:space:]]|$)/{found=1} END{exit !found}' "$SOURCES"; then
    if [[ "$DRY_RUN" == 1 ]]; then
      say "would add bookworm-backports to the Suites: line of the first stanza of $SOURCES"
    else
      say "adding bookworm-backports to $SOURCES"
      tmp="$(mktemp)"
      awk 'BEGIN{s=1} /^[[:space:]]*$/{if (seen) s++} !/^[[:space:]]*$/{seen=1} { if (s==1 && /^Suites:/ && !done) { sub(/[[:space:]]*$/, " bookworm-backports"); done=1 } print }' "$SOURCES" >"$tmp"
      cat "$tmp" >"$SOURCES"
      rm -f "$tmp"
    fi
  fi
fi

export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y chromium libvulkan1
run "${mesa_cmd[@]}"
if [[ "$need_torch" == 1 ]]; then
  run apt-get install -y python3-torch python3-numpy
fi

if [[ "$DRY_RUN" != 1 ]]; then
  # Check again: the install must have fixed everything, or the tests would fail obscurely later.
  [[ -x "$CHROMIUM" ]] || { say "chromium is still missing after apt-get install"; exit 1; }
  have_libvulkan || { say "libvulkan1 is still missing after apt-get install"; exit 1; }
  [[ "$(lavapipe_state)" == ok || -e "$SWIFTSHADER_ICD" ]] || { say "no usable Vulkan driver after apt-get install"; exit 1; }
  have_torch || { say "$PYTHON still cannot import torch after apt-get install python3-torch (set PIXELVAE_PYTHON to a Python with torch)"; exit 1; }
  say "system dependencies installed"
else
  say "dry run: nothing was installed"
fi
