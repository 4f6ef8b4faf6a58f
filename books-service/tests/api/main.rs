//! books-service over real gRPC, with a real auth-service issuing the tokens, on PostgreSQL and
//! SQLite, with real Redis. One binary for the whole suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authentication;
mod crud;
mod grpc_surface;
mod helpers;
mod listing;
mod search;
mod validation;
