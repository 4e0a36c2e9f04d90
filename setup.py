"""Package mapping (runtime/ is ``gridbind``) and the optional compiled cores.

pyproject.toml holds the metadata; this file exists because the three source roots map onto one
namespace and because compiled accelerators must be optional: when the C compiler is missing, the
build goes on and the pure-Python fallbacks are used.
"""

from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOTS = {"gridbind": "runtime", "gridbind.codegen": "codegen", "gridbind.generated": "generated"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for package, folder in ROOTS.items():
    package_dir[package] = folder
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

# Every C source under runtime/ named _*.c becomes an optional extension module.
extensions = [
    Extension(
        "gridbind." + ".".join(src.relative_to("runtime").with_suffix("").parts),
        [str(src)],
        extra_compile_args=["-O3"],
    )
    for src in sorted(Path("runtime").rglob("_*.c"))
]


class OptionalBuildExt(build_ext):
    """Build C accelerators when possible; never fail the install because of them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure means "use the fallback"
            print(f"warning: compiled accelerators not built ({exc}); pure Python is used")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: {ext.name} not built ({exc}); pure Python is used")


setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "gridbind.generated": ["**/*.xsd", "**/*.xml"],
        "gridbind.codegen": ["templates/*.j2", "*.xml"],
        "gridbind": ["py.typed"],
    },
    ext_modules=extensions,
    cmdclass={"build_ext": OptionalBuildExt},
)
