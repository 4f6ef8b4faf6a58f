//! auth-service over real gRPC, on PostgreSQL and SQLite, with real Redis.
//! One binary for the whole suite; each module covers one group of RPCs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod grpc_surface;
mod helpers;
mod login;
mod logout;
mod races;
mod refresh;
mod register;
mod revocation_outbox;
mod schema;
mod tokens;
