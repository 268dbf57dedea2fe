//! The sadomap HTTP API and map page (issue 4).
#![deny(missing_docs)]
