#!/usr/bin/env bash
# The plugin works whatever compiler CMake picks: builds it (CPU-only) with a g++ made like the GPU
# machine's default one (/opt/gcc), whose own libstdc++.so is a broken symlink (so -lstdc++ falls back to
# the static libstdc++.a) and whose specs add -Bsymbolic to shared links. First a control: a small shared
# library linked by that compiler does get private libstdc++ copies and SYMBOLIC, so the simulation holds.
# Then the plugin built by it must need the shared libstdc++.so.6, have neither, and format its error
# messages in full (cmake/CustomOpsCxxRuntime.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
work="$PWD/build-toolchain"
fake="$work/fake-gcc"
mkdir -p "$fake/bin" "$fake/lib"
real_cxx=$(command -v g++)
ln -sf "$("$real_cxx" -print-file-name=libstdc++.a)" "$fake/lib/libstdc++.a"
ln -sf /nonexistent/libstdc++.so.6 "$fake/lib/libstdc++.so"
printf '%%rename link old_link\n\n*link:\n%%{shared: -Bsymbolic} %%(old_link)\n' >"$fake/specs"
cat >"$fake/bin/g++" <<WRAPPER
#!/bin/sh
# g++ with the GPU machine's /opt/gcc set-up: no shared libstdc++ of its own, -Bsymbolic for shared links.
for a in "\$@"; do [ "\$a" = -print-file-name=libstdc++.so ] && { echo libstdc++.so; exit 0; }; done
exec "$real_cxx" -specs="$fake/specs" "\$@" -L"$fake/lib"
WRAPPER
chmod +x "$fake/bin/g++"
export CCACHE_COMPILERCHECK=content  # the wrapper is rewritten on every run; its content stays the same

# Control: what this compiler does to a shared library by default.
printf '#include <sstream>\nstd::string f(int i) { std::ostringstream s; s << i; return s.str(); }\n' >"$work/control.cpp"
"$fake/bin/g++" -shared -fPIC -O1 "$work/control.cpp" -o "$work/libcontrol.so"
copies=$(nm -DC --defined-only "$work/libcontrol.so" | grep -c "std::locale::id" || true)
if [ "$copies" = 0 ] || ! readelf -d "$work/libcontrol.so" | grep -q SYMBOLIC; then
  echo "[toolchain] the simulated compiler does not reproduce the problem (copies: $copies); check void"; exit 1
fi
echo "[toolchain] control: the simulated compiler puts $copies libstdc++ locale ids and SYMBOLIC into a shared library"

BUILD_DIR=build-toolchain/plugin CXX="$fake/bin/g++" CMAKE_PRESET=cpu-only CMAKE_ARGS="-DCUSTOM_OPS_BUILD_TESTS=OFF" \
  scripts/build.sh >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
grep "custom_ops: .*libstdc++\|custom_ops: .*Bsymbolic" "$work/build.log"
plugin="$work/plugin/install/lib/libcustom_ops.so"
readelf -d "$plugin" | grep -q "NEEDED.*libstdc++\.so\.6" || { echo "[toolchain] libstdc++.so.6 is not NEEDED"; exit 1; }
if readelf -d "$plugin" | grep -q SYMBOLIC; then echo "[toolchain] the plugin is linked -Bsymbolic"; exit 1; fi
copies=$(nm -DC --defined-only "$plugin" | grep -c "std::locale::id\|std::basic_ostream" || true)
[ "$copies" = 0 ] || { echo "[toolchain] $copies libstdc++ symbols defined in the plugin"; exit 1; }
# Formatting numbers into an error message is what broke (cut at the first number, or a segfault).
CUSTOM_OPS_LIBRARY="$plugin" "$PYTHON" - <<'PY'
import sys
sys.path.insert(0, "python")
import torch, custom_ops
try:
    torch.ops.custom.conv1d(torch.randn(1, 2, 40), torch.randn(2, 2, 5), None, [3], [0], [2**62], 1)
    raise SystemExit("[toolchain] no error for dilation 2^62")
except RuntimeError as error:
    message = str(error).splitlines()[0]
assert "'dilation' = 4611686018427387904 with kernel size K = 5" in message, message
print(f"[toolchain] plugin error message in full: {message}")
PY
echo "[toolchain] plugin built by a compiler without a shared libstdc++ and with -Bsymbolic: OK"
