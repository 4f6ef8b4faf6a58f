//! Generated gRPC code for the bookstore services, and the encoded descriptor set that their
//! reflection services publish. Only generated code lives here: conversions and validation belong
//! to the service that owns each message.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("bookstore.auth.v1");
    }
}

pub mod books {
    pub mod v1 {
        tonic::include_proto!("bookstore.books.v1");
    }
}

/// Encoded `FileDescriptorSet` of every bookstore `.proto`, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bookstore_descriptor");
