"""Building the kernel library: it must build where it can, cache per machine, and fail loudly (one warning)."""
import shutil

import pytest

from mindspore_ptq.kernels import build
from mindspore_ptq.kernels.build import kernels_available, unavailable_reason

CAN_BUILD = shutil.which("g++") is not None and {"avx2", "fma"} <= build.cpu_flags()


@pytest.mark.skipif(not CAN_BUILD, reason="no g++ or no AVX2/FMA here")
def test_kernels_are_available_with_gpp_and_avx2():
    """CI must not silently fall back: with g++ and an AVX2/FMA CPU the library has to build."""
    assert kernels_available(), unavailable_reason()
    assert unavailable_reason() == ""


@pytest.fixture
def fresh_build(monkeypatch):
    """build's per-process caches emptied for the test and again afterwards."""
    build._build.cache_clear()
    build.library_path.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    build._build.cache_clear()
    build.library_path.cache_clear()


@pytest.mark.parametrize("broken", ["no compiler", "no avx2"])
def test_unavailable_kernels_warn_once(broken, fresh_build, caplog):
    if broken == "no compiler":
        fresh_build.setattr(build, "COMPILER", "no-such-g++")
    else:
        fresh_build.setattr(build, "cpu_flags", frozenset)
    with caplog.at_level("WARNING", logger="mindspore_ptq"):
        assert build.library_path() is None and build.library_path() is None
    assert not kernels_available()
    assert ("no-such-g++ is not on PATH" if broken == "no compiler" else "lacks avx2/fma") in unavailable_reason()
    assert len(caplog.records) == 1 and unavailable_reason() in caplog.records[0].getMessage()


@pytest.mark.skipif(not CAN_BUILD, reason="no g++ or no AVX2/FMA here")
def test_build_cache_folder(fresh_build, tmp_path):
    fresh_build.setenv("MINDSPORE_PTQ_KERNEL_CACHE", str(tmp_path))
    path = build.library_path()
    assert path is not None and path.startswith(str(tmp_path)) and path.endswith(build.LIB_NAME)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [build.LIB_NAME]  # no temporary file left
    mtime = tmp_path.joinpath(path).stat().st_mtime_ns
    build._build.cache_clear()
    assert build._build()[0] == path and tmp_path.joinpath(path).stat().st_mtime_ns == mtime  # found, not rebuilt
