//! The sadomap place database (being written).
#![deny(missing_docs)]
