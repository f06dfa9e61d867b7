"""Reading inputs: image decoding in sensor order, folders, hashing, data-set layouts, fingerprint library."""
