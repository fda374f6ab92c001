"""Compile the kernel sources (*.cpp, *.h here) once per machine into a cache folder, or say (once) why not.

The library lands in `$MINDSPORE_PTQ_KERNEL_CACHE` (default `~/.cache/mindspore_ptq/kernels`) under a folder
named after the sha256 of the sources, the compiler flags and the compiler version, so an edit or a new compiler
builds afresh. It is compiled under a temporary name and renamed into place, so concurrent builds are safe.
Without g++, AVX2 and FMA, or when compilation fails, `library_path()` is None and callers use the portable
MindSpore ops of `reference.py`.
"""
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger("mindspore_ptq")

SOURCE_DIR = Path(__file__).parent
SOURCES = tuple(sorted(path.name for path in SOURCE_DIR.glob("*.cpp")))
HEADERS = tuple(sorted(path.name for path in SOURCE_DIR.glob("*.h")))
LIB_NAME = "libptq_cpu.so"
COMPILER = "g++"
CXX_FLAGS = ("-O3", "-mavx2", "-mfma", "-pthread", "-shared", "-fPIC", "-Wl,-z,defs", "-std=c++17",
             "-D_GLIBCXX_USE_CXX11_ABI=0")
REQUIRED_CPU_FLAGS = ("avx2", "fma")


def cache_root():
    """Where compiled libraries are kept: $MINDSPORE_PTQ_KERNEL_CACHE or ~/.cache/mindspore_ptq/kernels."""
    env = os.environ.get("MINDSPORE_PTQ_KERNEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mindspore_ptq" / "kernels"


def cpu_flags():
    """The CPU feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _compiler_version(compiler):
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout


def _compile(compiler, target):
    """Compile to a temporary file beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{LIB_NAME}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        sources = [str(SOURCE_DIR / name) for name in SOURCES]
        result = subprocess.run([compiler, *CXX_FLAGS, "-o", tmp, *sources], capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
            raise RuntimeError(f"{compiler} failed: {errors[0].strip() if errors else 'no output'}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@functools.lru_cache(maxsize=None)
def _build():
    """(path, None) once the library is built or found in the cache, else (None, reason)."""
    missing = [flag for flag in REQUIRED_CPU_FLAGS if flag not in cpu_flags()]
    if missing:
        return None, f"the CPU lacks {'/'.join(missing)}"
    compiler = shutil.which(COMPILER)
    if compiler is None:
        return None, f"{COMPILER} is not on PATH"
    try:
        key = hashlib.sha256()
        for name in SOURCES + HEADERS:
            key.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
        key.update(" ".join(CXX_FLAGS).encode())
        key.update(_compiler_version(compiler).encode())
        target = cache_root() / key.hexdigest()[:16] / LIB_NAME
        if not target.exists():
            _compile(compiler, target)
        return str(target), None
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        return None, " ".join(str(err).split())


@functools.lru_cache(maxsize=None)
def library_path():
    """Path of the compiled kernel library, or None (with one warning per process saying why)."""
    path, reason = _build()
    if path is None:
        logger.warning("mindspore_ptq CPU kernels unavailable (%s); quantized linears use the portable MindSpore ops",
                       reason)
    return path


def kernels_available():
    """True when the kernel library is built (or cached) and the CPU can run it."""
    return library_path() is not None


def unavailable_reason():
    """Why the kernels cannot be used ('' when they can)."""
    return _build()[1] or ""
