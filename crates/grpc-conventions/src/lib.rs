//! The bookstore's gRPC conventions, in one place for the services that follow them and the
//! clients (the gateway) that rely on them:
//!
//! - INVALID_ARGUMENT carries a `google.rpc.BadRequest` detail with one violation per invalid
//!   field, named as in the `.proto`;
//! - throttled and busy answers carry `retry-after` metadata in whole seconds;
//! - list calls take a `page_size` (0 means 20, at most 100) and an opaque `page_token`;
//! - instants are `google.protobuf.Timestamp`s in UTC.

mod errors;
mod paging;

/// A stored UTC instant as a protobuf timestamp.
pub fn timestamp(at: chrono::NaiveDateTime) -> prost_types::Timestamp {
    let at = at.and_utc();
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub use errors::{FieldErrors, field_violations, retry_after, with_retry_after};
pub use paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageToken, page_limit};
