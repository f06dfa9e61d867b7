"""Pure signal processing: arrays in, arrays out; no I/O, no printing, no torch."""
