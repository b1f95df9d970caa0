"""Writers: one module per benchmark, each producing that benchmark's official files.

Folder names mirror LLaVA-1.5's ``playground/data/eval`` so the same command lines work."""
