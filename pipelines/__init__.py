"""测评看板 pipelines: files → ingest → warehouse → estimation → scoring → ranking → pages/exports."""
