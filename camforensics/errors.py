"""The one exception family of camforensics.

Library code raises these; the command line turns them into one clear line and an exit code, in one place
(:func:`camforensics.cli.common.fail`). Messages name the way out.
"""


class CamforensicsError(Exception):
    """Base class of every error camforensics raises on purpose."""


class InputError(CamforensicsError):
    """An input file cannot be used (missing, unreadable, not an image, truncated, too large, ...)."""


class LibraryError(CamforensicsError):
    """A fingerprint library or one of its entries is missing, corrupted or inconsistent."""


class ParameterError(CamforensicsError, ValueError):
    """A parameter value is out of range or of the wrong kind."""


class ModelError(CamforensicsError):
    """A model that is unknown, missing, tampered with, or described inconsistently."""


class SizeMismatchError(CamforensicsError):
    """Two arrays that must be compared have no compatible size (in any allowed rotation)."""


class OutputPathError(CamforensicsError):
    """An output path that would write an input, is of the wrong kind (file / folder) or cannot be written;
    refused before any work."""
