"""anonymize and evaluate anonymization, one module per concern.

- :mod:`.batch`: the options of a run and the batch driver (:func:`anonymize_images`, :func:`anonymize_one`),
- :mod:`.learned`: the learned anonymizers of the registry (targeted, erase) and the judges,
- :mod:`.attacks`: FGSM and PGD against an attributor checkpoint,
- :mod:`.prints`, :mod:`.table`, :mod:`.evaluate`: ``camforensics evaluate anonymization``.
"""

from camforensics.pipelines.anonymize.batch import METHODS, AnonymizeParams, anonymize_images
from camforensics.pipelines.anonymize.fingerprint import DeviceRef

__all__ = ["METHODS", "AnonymizeParams", "DeviceRef", "anonymize_images"]
