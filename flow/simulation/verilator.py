"""Build Verilator simulations (cached by a hash of sources and parameters) and run the generic
cocotb testbench ``tb_stream`` (sim/tb_stream.py, shipped with the package) on them."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.paths import work_root
from flow.toolchain import setup_verilator, testbench_dir, verilator_version


def default_build_root() -> Path:
    """The Verilator build cache: $FLOW_BUILD_DIR/sim or <work root>/build/sim."""
    return Path(os.environ.get("FLOW_BUILD_DIR", work_root() / "build")) / "sim"


@dataclass(frozen=True)
class Build:
    """A compiled simulation: where it lives and how long the build took (0 when cached)."""

    directory: Path
    toplevel: str
    seconds: float
    cached: bool
    rtl_dir: Path | None = None  # this call's sources' folder: memory files are read from it at run time


def sources_folder(sources: list[Path]) -> Path | None:
    """The one folder all ``sources`` lie in (an emitted design's rtl folder), else None."""
    folders = {Path(source).resolve().parent for source in sources}
    return folders.pop() if len(folders) == 1 else None


def rtl_dir_plusargs(built: Build) -> list[str]:
    """The plusarg that points a simulation's memory files (a folded linear's WEIGHTS_FILE, a name
    relative to the emitted rtl folder; an absolute path ignores it) at the build's sources'
    folder. A run-time argument, so a cached build serves the same design emitted anywhere."""
    return [] if built.rtl_dir is None else [f"+flow_rtl_dir={built.rtl_dir}"]


def build_key(toplevel: str, sources: list[Path], parameters: dict[str, Any]) -> str:
    """Hash of everything that changes the binary: tool version, sources, top, parameters."""
    digest = hashlib.sha256()
    digest.update(verilator_version().encode())
    digest.update(toplevel.encode())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for source in sorted(sources):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def build(
    toplevel: str,
    sources: list[Path],
    parameters: dict[str, Any] | None = None,
    build_root: Path | None = None,
) -> Build:
    """Compile ``toplevel`` once per distinct key; concurrent callers wait on a file lock."""
    from cocotb_tools.runner import get_runner

    parameters = dict(parameters or {})
    setup_verilator()
    key = build_key(toplevel, sources, parameters)
    build_root = build_root or default_build_root()
    directory = build_root / f"{toplevel}-{key}"
    build_root.mkdir(parents=True, exist_ok=True)
    with open(build_root / f"{toplevel}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = directory / "flow_build.done"
        if done.exists():
            return Build(directory, toplevel, 0.0, True, sources_folder(sources))
        shutil.rmtree(directory, ignore_errors=True)
        start = time.perf_counter()
        objcache = runtime_object_cache()
        runner = get_runner("verilator")
        log_file = build_root / f"{toplevel}-{key}.log"
        flags = os.environ.get("MAKEFLAGS", "")
        if objcache is not None:
            os.environ["MAKEFLAGS"] = f"{flags} OBJCACHE={objcache}".strip()
        try:
            runner.build(
                sources=[str(s) for s in sources],
                hdl_toplevel=toplevel,
                parameters=parameters,
                build_dir=str(directory),
                build_args=BUILD_ARGS,
                log_file=str(log_file),
            )
        except (RuntimeError, SystemExit) as error:
            raise RuntimeError(f"verilator build of {toplevel} failed: {first_error(log_file, str(error))} "
                               f"(full log: {log_file})") from None
        finally:
            os.environ["MAKEFLAGS"] = flags
        seconds = time.perf_counter() - start
        done.write_text(f"{seconds:.3f}\n")
        return Build(directory, toplevel, seconds, False, sources_folder(sources))


BUILD_ARGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast"]
# Verilator's runtime objects include only Verilator's own headers, so every build with the same
# Verilator, arguments and make flags compiles them identically: most of a small build's time.
# Verilator's makefiles prefix every compile with $(OBJCACHE) (meant for ccache, which PyPI does
# not carry); this wrapper serves those four objects from a shared cache and runs the rest.
RUNTIME_OBJECTS = ("verilated.o", "verilated_dpi.o", "verilated_threads.o", "verilated_vpi.o")
OBJCACHE_SCRIPT = """#!/bin/sh
# flow's object cache for Verilator's runtime objects (generated; see flow/simulation/verilator.py)
cache='{cache}'
out=''; prev=''
for arg in "$@"; do [ "$prev" = "-o" ] && out="$arg"; prev="$arg"; done
case "$out" in
  {objects})
    if [ -f "$cache/$out" ]; then cp "$cache/$out" "$out" && exit 0; fi
    "$@" || exit $?
    cp "$out" "$cache/$out.$$" && mv "$cache/$out.$$" "$cache/$out"
    exit 0;;
esac
exec "$@"
"""


def runtime_object_cache(flavour: str = "") -> Path | None:
    """The wrapper script for $(OBJCACHE), keyed by everything that changes the objects; builds
    with other flags or defines (the bulk testbench's) name them in ``flavour``."""
    key = hashlib.sha256(json.dumps([verilator_version(), BUILD_ARGS, os.environ.get("MAKEFLAGS", ""),
                                     os.environ.get("CXX", "")] + ([flavour] if flavour else [])
                                    ).encode()).hexdigest()[:16]
    cache = default_build_root().resolve() / "runtime" / key
    if any(ch.isspace() or ch in "'\\" for ch in str(cache)):
        return None  # the make variable and the script quote nothing: skip the cache
    script = cache / "objcache.sh"
    if not script.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"objcache.sh.{os.getpid()}"
        tmp.write_text(OBJCACHE_SCRIPT.format(cache=cache, objects="|".join(RUNTIME_OBJECTS)))
        tmp.chmod(0o755)
        tmp.replace(script)
    return script


def first_error(log_file: Path, fallback: str) -> str:
    """The line of a tool log that says what went wrong: Verilator's first real %Error, else the
    first warning it turned into an error, else a compiler's first ``error:``."""
    if not log_file.exists():
        return fallback
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines()]
    for wanted in (lambda s: s.startswith("%Error") and "Exiting due to" not in s,
                   lambda s: s.startswith("%Warning"),
                   lambda s: "error:" in s.lower() or s.startswith("ERROR")):
        found = next((line for line in lines if wanted(line)), None)
        if found:
            return found
    return fallback


def run_stream(
    built: Build,
    spec: dict[str, Any],
    work_dir: Path,
) -> dict[str, Any]:
    """Run ``tb_stream`` on a build with a spec; return the testbench's results dict."""
    from cocotb_tools.runner import get_runner

    work_dir = work_dir.resolve()  # the simulator runs in another directory
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, results=str(work_dir / "results.json"))
    spec_path = work_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    results_path = Path(spec["results"])
    results_path.unlink(missing_ok=True)
    runner = get_runner("verilator")
    start = time.perf_counter()
    try:
        _run_test(runner, built, work_dir, spec_path)
    except SystemExit as error:  # cocotb's runner exits on a failing test; the results tell why
        if not results_path.exists():
            raise RuntimeError(
                f"simulation failed (exit {error.code}) before writing results; "
                f"see {work_dir / 'sim.log'}"
            ) from None
    seconds = time.perf_counter() - start
    if not results_path.exists():
        raise RuntimeError(f"the simulation wrote no results; see {work_dir / 'sim.log'}")
    results = json.loads(results_path.read_text())
    results["sim_seconds"] = seconds
    results["build_seconds"] = built.seconds
    return results


def _run_test(runner: Any, built: Build, work_dir: Path, spec_path: Path) -> None:
    """Invoke cocotb's runner on a prebuilt simulation with the testbench spec.

    cocotb hands the simulator this process's ``sys.path`` as PYTHONPATH (it ignores one given
    in ``extra_env``), so the testbench folder goes onto ``sys.path`` itself.
    """
    bench = str(testbench_dir())
    if bench not in sys.path:
        sys.path.append(bench)
    runner.test(
        test_module="tb_stream",
        hdl_toplevel=built.toplevel,
        hdl_toplevel_lang="verilog",
        build_dir=str(built.directory),
        test_dir=str(work_dir),
        results_xml=str(work_dir / "results.xml"),
        plusargs=rtl_dir_plusargs(built),
        extra_env={
            "FLOW_TB_SPEC": str(spec_path),
            "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
        },
        log_file=str(work_dir / "sim.log"),
    )
