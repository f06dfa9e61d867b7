"""One module per command: compose io, core and reports into what a command does (usable from Python)."""
