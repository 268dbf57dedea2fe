//! Integration tests of the import and export formats.
