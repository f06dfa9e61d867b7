"""Process plumbing beside the signal processing: the optional native kernels and their loader (``native``), the
thread pool that splits work into row or column strips (``threads``), and the C allocator's settings (``heap``).

Nothing here knows about images or fingerprints; :mod:`camforensics.core` runs on it.
"""
