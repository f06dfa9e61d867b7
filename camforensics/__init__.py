"""camforensics: source-camera forensics from the command line and from Python.

Importing the package is cheap: heavy modules (scipy, pywt, cv2, onnxruntime, torch) are imported by the
modules that need them, never here.
"""

__version__ = "0.1.0"

from camforensics.errors import CamforensicsError  # noqa: E402  (re-export)

__all__ = ["CamforensicsError", "__version__"]
