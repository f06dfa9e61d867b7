"""Report schema and writers (json, jsonl, csv), written atomically."""
