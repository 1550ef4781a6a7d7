//! Fixture binaries for the integration tests live in src/bin.
