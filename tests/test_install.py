"""`pip install .` into a fresh venv, then `lbgen emit` from another directory.

The wheel must carry templates/, hls/ and sim/. The fresh venv gets lbgen
from the wheel only; torch and the other dependencies are borrowed from the
test's own environment through a path entry (a .pth line), which does not
run that environment's editable-install hooks, so `import lbgen` can only
find the wheel.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

from lbgen_testing.common import DIGITS, ROOT


def test_wheel_install_emits_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    wheel = next(wheels.glob("lbgen-*.whl"))
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    fresh_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "borrowed_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import lbgen; print(lbgen.__file__)"], capture_output=True,
                           text=True, check=True, cwd=work).stdout.strip()
    assert where.startswith(str(fresh_site)), where
    lbgen = env_dir / "bin" / "lbgen"
    proc = subprocess.run([str(lbgen), "emit", str(DIGITS / "digits_w1a2.pt"), "--target", "fpga", "--w", "1",
                           "--a", "2", "-o", "out"], capture_output=True, text=True, cwd=work, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = work / "out"
    assert json.loads((out / "lbgen.json").read_text())["name"] == "digits_w1a2"
    for rel in ("rtl/lbgen_top.v", "rtl/filelist.f", "hls/lbgen_top.cpp", "hls/tb_csim.cpp"):
        assert (out / rel).is_file(), rel
    for line in (out / "rtl" / "filelist.f").read_text().split():
        assert (out / "rtl" / line).is_file(), line
    # the cocotb library ships too
    proc = subprocess.run([str(py), "-c", "import importlib.resources as r; "
                           "print(sorted(p.name for p in r.files('lbgen.simlib').iterdir()))"],
                          capture_output=True, text=True, cwd=work, check=True)
    assert ".py" in proc.stdout
    # and the native testbench: its cores and top template, outside the design's library
    proc = subprocess.run([str(py), "-c", "from lbgen.native_tb import tb_library, TB_MAIN; "
                           "print(sorted(p.name for p in tb_library()), (tb_library()[0].parent / TB_MAIN).is_file(), "
                           "(tb_library()[0].parent / 'lbgen_tb.v.j2').is_file())"],
                          capture_output=True, text=True, cwd=work, check=True)
    assert "lb_tb_source.v" in proc.stdout and proc.stdout.strip().endswith("True True"), proc.stdout
