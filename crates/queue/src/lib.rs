//! The sadomap task system (issue 3): a general queue that knows nothing of places.
#![deny(missing_docs)]
