"""pip installation of grasp_semantics for users without ROS (the core library and CLI).

On a robot the package is built by colcon from CMakeLists.txt (ament_cmake), which also
generates the interfaces in msg/ and srv/; this file makes the same Python package
installable with `pip install .` and lists what `colcon build` installs to share/.
"""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent


def package_files(folder: str) -> list[str]:
    """Every file under grasp_semantics/<folder>, at any depth, relative to the package (the
    default model's grasp_scorer/ and describe/ included; a one-level glob missed them)."""
    package = here / "grasp_semantics"
    return sorted(
        str(path.relative_to(package))
        for path in (package / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def requirements(name: str) -> list[str]:
    """The pins in one requirements file (comments dropped)."""
    lines = (line.split("#")[0].strip() for line in (here / name).read_text().splitlines())
    return [line for line in lines if line]


setup(
    name="grasp_semantics",
    version="0.1.0",
    description="Language-conditioned functional grasping for ROS 2 (Qwen-VL + PointNet++)",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["grasp_semantics", "grasp_semantics.*"]),
    package_data={
        "grasp_semantics": [*package_files("weights"), "physics/*.npz", "py.typed", "*/README.md"]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/grasp_semantics"]),
        ("share/grasp_semantics", ["package.xml"]),
        # message definitions: `replay` registers them with rosbags to write its output bag
        ("share/grasp_semantics/msg", [str(p) for p in sorted(here.glob("msg/*.msg"))]),
        ("share/grasp_semantics/srv", [str(p) for p in sorted(here.glob("srv/*.srv"))]),
        ("share/grasp_semantics/launch", [str(p) for p in sorted(here.glob("launch/*.py"))]),
        ("share/grasp_semantics/config", [str(p) for p in sorted(here.glob("config/*"))]),
    ],
    install_requires=["torch==2.13.0", *requirements("requirements.txt")],
    extras_require={"test": requirements("requirements-test.txt")},
    entry_points={
        "console_scripts": [
            "grasp-semantics = grasp_semantics.cli:main",
            "grasp_semantics_node = grasp_semantics.ros.node:main",
        ]
    },
)
