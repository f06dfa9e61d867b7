"""camforensics.accel without torch: cheap to import, "cpu" always works, CUDA refusals name the way out."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False)


def test_accel_import_does_not_import_torch():
    proc = _run(
        """
        import sys
        import camforensics.accel
        assert camforensics.accel.resolve_device("cpu") == "cpu"
        assert "torch" not in sys.modules, "import camforensics.accel imported torch"
        """
    )
    assert proc.returncode == 0, proc.stderr


def test_without_torch_cpu_and_auto_work_and_cuda_names_the_install():
    proc = _run(
        """
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        from camforensics import accel
        from camforensics.errors import ParameterError
        assert accel.resolve_device("auto") == "cpu"
        assert accel.resolve_device("cpu") == "cpu"
        assert accel.describe_device("cpu")["torch"] is None
        try:
            accel.resolve_device("cuda")
        except ParameterError as exc:
            assert "camforensics[gpu-torch]" in str(exc) and "--device cpu" in str(exc), exc
        else:
            raise SystemExit("cuda without torch was accepted")
        try:
            from camforensics.accel import extract_residual_torch  # noqa: F401
        except ImportError as exc:
            assert "camforensics[gpu-torch]" in str(exc), exc
        else:
            raise SystemExit("the torch backend imported without torch")
        """
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
