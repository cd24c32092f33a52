//! Go text/template for --format (docs/engine.md).
