"""Thin typer commands. Heavy imports (scipy, pywt, cv2, onnxruntime, torch) stay inside command bodies."""

# Command modules, each exposing ``register(app)``; the order is the order of ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "enroll",
    "identify",
    "verify",
    "cluster",
    "anonymize",
    "profile",
    "evaluate",
    "extract",
    "report",
    "library",
    "datasets",
    "simulate",
    "models",
    "signatures",
    "train",
    "export",
    "demo",
)
