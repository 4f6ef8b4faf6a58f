//! books-service: the bookstore data over gRPC. Built by the books-service issue; empty until then.
