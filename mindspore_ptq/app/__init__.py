"""What users run on top of the algorithm core: the CLI, the workflow functions, the named presets, the
benchmark, plots and report files. The core never imports this package."""
