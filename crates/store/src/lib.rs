//! The sadomap place database.
//!
//! A [`Store`] keeps places (SQLite embedded by default, PostgreSQL for larger deployments) with
//! per-field provenance and a history of every change; an [`Index`] answers map queries in memory;
//! `formats` reads and writes the file formats places arrive and leave in.
#![deny(missing_docs)]

mod backend;
mod formats;
mod index;

// @backend exports
// @index exports
// @formats exports
