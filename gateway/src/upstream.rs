//! The gRPC clients of auth-service and books-service: one lazily connected HTTP/2 channel per
//! service (over TCP, or through memory when they share the process), shared by every request (cloning a client clones a handle), with connect and call
//! timeouts. Each call carries the request id and, when there is one, the caller's token.

use observability::CallMetrics;
use observability::rpc::Observed;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::books::v1::books_service_client::BooksServiceClient;
use service_support::grpc::InProcessConnector;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tower_layer::Layer;

/// The upstreams that share the gateway's process (the one-process stack), reached through
/// memory rather than over TCP at their URLs; none when the services run apart.
#[derive(Debug, Clone, Default)]
pub struct InProcessUpstreams {
    pub auth: Option<InProcessConnector>,
    pub books: Option<InProcessConnector>,
}

/// A channel whose calls are timed in `rpc_client_call_duration_seconds` and traced, each
/// passing the request's trace on.
pub type Timed = Observed<Channel>;

#[derive(Clone)]
pub struct Upstreams {
    pub auth: AuthServiceClient<Timed>,
    pub books: BooksServiceClient<Timed>,
    pub auth_channel: Channel,
    pub books_channel: Channel,
}

impl Upstreams {
    pub fn new(auth_channel: Channel, books_channel: Channel, calls: &CallMetrics) -> Self {
        let timed = |channel: &Channel| calls.layer().layer(channel.clone());
        Self {
            auth: AuthServiceClient::new(timed(&auth_channel)),
            books: BooksServiceClient::new(timed(&books_channel)),
            auth_channel,
            books_channel,
        }
    }
}

/// What every upstream call carries from the HTTP request.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub request_id: String,
    /// The caller's access token, forwarded so the service can authorise the call itself.
    pub token: Option<String>,
}

impl CallContext {
    /// `message` as a gRPC request with `x-request-id` and `authorization` metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Ok(value) = MetadataValue::try_from(self.request_id.as_str()) {
            metadata.insert("x-request-id", value);
        }
        if let Some(token) = &self.token
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            metadata.insert("authorization", value);
        }
        request
    }
}
