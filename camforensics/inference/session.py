"""The one place that creates onnxruntime sessions: providers, threads and options (STYLE.md item 5)."""

from __future__ import annotations

from camforensics.errors import ParameterError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (``CUDAExecutionProvider`` only on onnxruntime-gpu)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def providers_for(device: str = "auto") -> list[str]:
    """Providers to ask for: CUDA first when ``device`` is auto/cuda and the build has it, CPU always last.

    Raises
    ------
    ParameterError
        For an unknown device, or ``cuda`` on an onnxruntime build without the CUDA provider.
    """
    key = str(device).lower()
    if key not in DEVICES:
        raise ParameterError(f"unknown device {device!r}; choose one of {DEVICES}")
    have = available_providers()
    if key == "cuda" and "CUDAExecutionProvider" not in have:
        raise ParameterError(
            "--device cuda needs onnxruntime-gpu (this onnxruntime offers "
            f"{have}); install it in place of onnxruntime, or use --device cpu"
        )
    if key in ("auto", "cuda") and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def new_session(model: bytes, *, device: str = "auto", threads: int = 0):
    """An ``onnxruntime.InferenceSession`` for a serialized model.

    Parameters
    ----------
    model : bytes
        The ONNX file's bytes (the caller has checked their sha256: the session is built from the same bytes, so
        the file cannot change between the check and the load).
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when onnxruntime-gpu sees a GPU, else the CPU.
    threads : int
        Intra-op threads; 0 lets onnxruntime use every core.

    Returns
    -------
    onnxruntime.InferenceSession
        ``session.get_providers()`` says which providers were really attached (CUDA silently falls back to CPU
        when its libraries are missing: report that list, not the request).
    """
    import onnxruntime as ort

    if threads < 0:
        raise ParameterError(f"threads must be >= 0, not {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    # Its threads sleep between operators instead of spinning: a command runs its own threads beside the model
    # (the residual, the correlations), and spinning took their cores (one-photo identify: the attribution and the
    # residual beside it 1.10-1.27 -> 0.83-0.94 s of CPU, the same outputs; tests/test_inference.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: a missing CUDA library is reported through get_providers()
    providers = providers_for(device)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's InvalidProtobuf, Fail, ...: a file that is no usable ONNX model
        from camforensics.errors import ModelError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"the model file is not a usable ONNX model ({type(exc).__name__}: {first[:200]}); its sha256 matches "
            "the manifest, so the manifest was changed with it: restore both from the release or re-export the model"
        ) from None
