"""Camera simulator."""
