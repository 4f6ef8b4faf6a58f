//! What answers a request no route takes: 405 with an `Allow` header when the path exists for
//! other methods (RFC 9110 §15.5.6), else 404. The paths and methods come from the OpenAPI
//! document, which is generated from the route declarations themselves.

use actix_web::dev::ResourceDef;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;

/// Every documented path, with the methods it serves.
pub struct RouteTable {
    routes: Vec<(ResourceDef, String)>,
}

impl RouteTable {
    pub fn from_openapi(openapi: &OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                ];
                let allow: Vec<&str> = methods
                    .iter()
                    .filter(|(_, operation)| operation.is_some())
                    .map(|(method, _)| *method)
                    .collect();
                (ResourceDef::new(path.as_str()), allow.join(", "))
            })
            .collect();
        Self { routes }
    }

    /// The `Allow` value for `path`, if some route serves it.
    fn allowed(&self, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|(resource, _)| resource.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

/// The application's default service.
pub async fn unmatched(
    request: HttpRequest,
    routes: web::Data<RouteTable>,
) -> Result<HttpResponse, ApiError> {
    let method = request.method();
    let path = request.path();
    match routes.allowed(path) {
        Some(allow) => Err(ApiError::MethodNotAllowed {
            detail: format!("{path} does not support {method}; it supports {allow}"),
            allow: allow.to_owned(),
        }),
        None => Err(ApiError::NotFound(format!("no route for {method} {path}"))),
    }
}
