"""Where the package's non-Python files are: ``msg/``, ``srv/``, ``config/`` and ``launch/``.

In a source checkout they sit beside the Python package; installed (colcon, ``cmake
--install``, ``pip install .``) they are in ``<prefix>/share/grasp_semantics`` while the Python
package is somewhere under ``<prefix>/lib``. Found from this file's own location, so an installed
command works without a sourced ROS environment (no ``AMENT_PREFIX_PATH``) and from any working
directory; the ament index is asked last.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = "grasp_semantics"


def share_directory() -> Path:
    """The folder holding ``package.xml`` and the package's ``msg/``, ``config/``...

    Raises FileNotFoundError naming every place looked at when none holds them.
    """
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir.parent]  # a source checkout: the repository root
    # installed: <prefix>/lib/pythonX.Y/site-packages/grasp_semantics -> <prefix>/share/...
    candidates += [parent / "share" / PACKAGE for parent in package_dir.parents]
    for candidate in candidates:
        if (candidate / "package.xml").is_file() and (candidate / "config").is_dir():
            return candidate
    if os.environ.get("AMENT_PREFIX_PATH"):
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            return Path(get_package_share_directory(PACKAGE))
        except PackageNotFoundError:
            pass
    looked = ", ".join(str(c) for c in candidates[:2]) + ", ... and the ament index"
    raise FileNotFoundError(
        f"cannot find {PACKAGE}'s share folder (package.xml, msg/, config/) near {package_dir} "
        f"(looked in {looked}); reinstall the package (scripts/setup.sh, colcon build, or "
        "pip install .)"
    )


def config_file(path: str | os.PathLike) -> Path:
    """``path`` if it exists, else the shipped config file of that name (so the README's
    ``--config config/train_tiny.yaml`` works from any directory with the installed copy)."""
    given = Path(path).expanduser()
    if given.is_file():
        return given
    shipped = share_directory() / "config" / given.name
    if shipped.is_file() and given.parent in (Path("."), Path("config")):
        return shipped
    raise FileNotFoundError(
        f"config file {str(path)!r} not found (relative to {Path.cwd()}), nor shipped as {shipped}"
    )
