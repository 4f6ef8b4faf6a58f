//! The ceiling for the gateway's figures in `scripts/load`: a bare actix-web server, built with
//! the same actix-web and the same worker count rule as the gateway, answering one small JSON
//! document (the size of `GET /api/me`) without authentication, upstream calls or middleware.
//!
//! `cargo run --release -p gateway --example bare_json -- 127.0.0.1:18090`

use actix_web::{App, HttpResponse, HttpServer, get};

#[get("/")]
async fn document() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "id": "0194c5e2-7b6a-7c3e-9b1a-2f8e4d6c5a10",
        "username": "reader",
        "email": "reader@example.org",
        "roles": ["user"],
        "is_active": true,
        "created_at": "2026-11-27T08:00:00Z",
        "updated_at": "2026-11-27T08:00:00Z",
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    HttpServer::new(|| App::new().service(document))
        .bind(addr)?
        .run()
        .await
}
