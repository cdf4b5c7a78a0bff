"""测评看板 pipelines: files → ingest → warehouse → estimation → scoring → ranking → pages/exports."""

from pipelines.allocator import keep_freed_memory

keep_freed_memory()   # every entry point (dashboard, CLI, notebook, benchmarks) imports this package
