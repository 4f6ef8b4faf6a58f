//! A book's fields as clients send them, validated at the boundary, and the listing parameters.

mod book;
mod isbn;
mod listing;

pub use book::{BookChanges, BookFields, Field, FieldInput, search_text};
pub use isbn::Isbn;
pub use listing::{ListQuery, Search};
