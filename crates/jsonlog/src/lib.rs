//! docker json-file logs: writer and reader (docs/engine.md).
