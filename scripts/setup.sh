#!/usr/bin/env bash
# Set up everything grasp_semantics needs on a machine without a ROS install:
#   1. a virtual environment in .venv (Python 3.11),
#   2. torch==2.13.0, the pinned Python dependencies and the ROS 2 Kilted wheels from PyPI,
#   3. the interface package (msg/, srv/) built with CMake and installed into the venv together
#      with the Python package, the way colcon would install it on a robot.
# Idempotent: each step records what it installed and is skipped when nothing changed, so a
# second run takes a few seconds. Writes only inside the repository and .venv, except that on a
# Debian machine where open3d cannot find libusb it runs `apt-get install libusb-1.0-0` (as root).
#
# Environment: PYTHON (interpreter for the venv, default python3.11), VENV (default .venv).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
python="${PYTHON:-python3.11}"
step=0
say() { step=$((step + 1)); printf '[setup %d/5] %s\n' "$step" "$*"; }
stamp_ok() { [[ -f "$venv/.stamp-$1" && "$(cat "$venv/.stamp-$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$venv/.stamp-$1"; }
pip_install() {  # quiet, with the full log kept in .venv/pip.log and shown on failure
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off "$@" \
        >>"$venv/pip.log" 2>&1 || { tail -n 30 "$venv/pip.log" >&2; exit 1; }
}

say "virtual environment: $venv"
if [[ ! -x "$venv/bin/python" ]]; then
    command -v "$python" >/dev/null || { echo "setup: $python not found (set PYTHON=...)" >&2; exit 1; }
    "$python" -m venv "$venv"
    echo "  created with $("$venv/bin/python" --version)"
else
    echo "  present ($("$venv/bin/python" --version))"
fi

say "Python dependencies (torch, transformers, ROS 2 wheels, build and test tools)"
deps_key="$(cat "$repo"/requirements{,-ros,-dev,-test}.txt | sha256sum | cut -c1-16)"
if stamp_ok deps "$deps_key"; then
    echo "  up to date"
else
    # The CPU build of torch 2.13.0 is served from this machine's wheel directory; on a CUDA
    # machine the same pin resolves to the CUDA build from PyPI.
    echo "  installing torch==2.13.0 ..."
    pip_install torch==2.13.0
    echo "  installing requirements*.txt ..."
    pip_install -r "$repo/requirements.txt" -r "$repo/requirements-ros.txt" \
        -r "$repo/requirements-dev.txt"
    stamp_set deps "$deps_key"
    echo "  done"
fi

say "system libraries"
if "$venv/bin/python" -c "import open3d" 2>/dev/null; then
    echo "  open3d imports"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "  open3d needs libusb-1.0: apt-get install libusb-1.0-0"
    apt-get update -qq >/dev/null && apt-get install -y -qq libusb-1.0-0 >/dev/null
    "$venv/bin/python" -c "import open3d" && echo "  open3d imports"
else
    echo "  open3d does not import; install your system's libusb-1.0 package" >&2
    exit 1
fi
# show-trial renders MuJoCo frames headless through EGL (Mesa's software rasteriser)
egl_check='import mujoco; mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8).close()'
if MUJOCO_GL=egl "$venv/bin/python" -c "$egl_check" 2>/dev/null; then
    echo "  MuJoCo renders headless (EGL)"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "  MuJoCo's EGL rendering needs Mesa: apt-get install libegl1 libgl1-mesa-dri"
    apt-get update -qq >/dev/null && apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null
    MUJOCO_GL=egl "$venv/bin/python" -c "$egl_check" && echo "  MuJoCo renders headless (EGL)"
else
    echo "  MuJoCo cannot render headless (show-trial); install libegl1 and libgl1-mesa-dri" >&2
fi

say "interface package (msg/, srv/) and Python package, built with CMake into the venv"
build="$repo/build"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    CMAKE_PREFIX_PATH="$venv" AMENT_PREFIX_PATH="$venv" cmake -S "$repo" -B "$build" \
        -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$venv/bin/python" \
        -DBUILD_TESTING=OFF -Wno-dev >"$build.log" 2>&1 \
        || { tail -n 40 "$build.log" >&2; echo "setup: cmake configure failed ($build.log)" >&2; exit 1; }
fi
{ cmake --build "$build" -j "$(nproc)" && cmake --install "$build"; } >>"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; echo "setup: message build failed ($build.log)" >&2; exit 1; }
echo "  installed grasp_semantics.msg, grasp_semantics.srv (log: build.log)"

say "command-line entry points in $venv/bin"
for tool in grasp-semantics grasp_semantics_node; do
    printf '#!/usr/bin/env bash\nexec "%s" "%s" "$@"\n' "$venv/bin/python" \
        "$venv/lib/grasp_semantics/$tool" >"$venv/bin/$tool"
    chmod +x "$venv/bin/$tool"
done
echo "  grasp-semantics, grasp_semantics_node"
echo "setup: ready (activate with: source $venv/bin/activate)"
