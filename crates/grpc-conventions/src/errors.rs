use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Messages for a request's invalid fields.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Adds the error of `result`, if any, and returns its value.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(field, message)).ok()
    }

    /// Takes over the messages of `other`.
    pub fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    /// One invalid field.
    pub fn single(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when no field was invalid, else `Err(self)`, for `?` into a service error.
    ///
    /// # Errors
    /// Every collected message.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// INVALID_ARGUMENT with a `BadRequest` detail and a readable summary as message.
    pub fn into_status(self) -> Status {
        let mut details = ErrorDetails::new();
        let mut summary = Vec::with_capacity(self.0.len());
        for (field, message) in self.0 {
            summary.push(format!("{field}: {message}"));
            details.add_bad_request_violation(field, message);
        }
        Status::with_error_details(Code::InvalidArgument, summary.join("; "), details)
    }
}

/// Adds `retry-after` (whole seconds, at least 1) to `status`.
pub fn with_retry_after(mut status: Status, after: Duration) -> Status {
    if let Ok(value) = after.as_secs().max(1).to_string().parse() {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

/// The `retry-after` of a status, in seconds.
pub fn retry_after(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The `(field, message)` pairs of an INVALID_ARGUMENT status; empty for other statuses.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    if status.code() != Code::InvalidArgument {
        return Vec::new();
    }
    status
        .get_details_bad_request()
        .map(|details| {
            details
                .field_violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn field_errors_survive_the_trip_through_a_status() {
        let mut errors = FieldErrors::default();
        errors.add("title", "is required");
        errors.add("isbn", "has a wrong check digit");

        let status = errors.into_status();

        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "title: is required; isbn: has a wrong check digit"
        );
        assert_eq!(
            field_violations(&status),
            [
                ("title".to_owned(), "is required".to_owned()),
                ("isbn".to_owned(), "has a wrong check digit".to_owned())
            ]
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let status = with_retry_after(Status::unavailable("busy"), Duration::from_millis(200));
        assert_eq!(retry_after(&status), Some(1));
        let status = with_retry_after(
            Status::resource_exhausted("slow down"),
            Duration::from_secs(90),
        );
        assert_eq!(retry_after(&status), Some(90));
        assert_eq!(retry_after(&Status::internal("x")), None);
    }
}
