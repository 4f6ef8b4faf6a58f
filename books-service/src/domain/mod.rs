//! A book's fields as clients send them, validated at the boundary, and the listing parameters.

mod book;
mod isbn;
mod listing;

pub use book::{BookFields, Field, FieldInput, apply};
pub use isbn::Isbn;
pub use listing::ListQuery;
