//! The AuthService RPCs: each converts its request into domain values, calls one operation of
//! [`AppState`], and converts the result back. Nothing else happens here.

use std::sync::Arc;

use grpc_conventions::timestamp;
use proto::auth::v1 as pb;
use proto::auth::v1::auth_service_server::AuthService;
use token_verifier::{Claims, Rejection, jwk_to_proto};
use tonic::{Request, Response, Status};

use crate::accounts::{AccountUpdate, Registration};
use crate::db::{sessions::Session, users::User};
use crate::domain::{ClientInfo, Roles};
use crate::error::{AuthError, FieldErrors};
use crate::state::AppState;
use crate::tokens::TokenPair;

pub struct AuthApi {
    state: Arc<AppState>,
}

impl AuthApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthService for AuthApi {
    #[tracing::instrument(skip_all)]
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Answer<pb::RegisterResponse> {
        let request = request.into_inner();
        let client = client_info(request.client.as_ref())?;
        let registration = Registration {
            username: request.username,
            email: request.email,
            password: request.password,
        };
        let (user, tokens) = self
            .state
            .register(registration, Roles::new_user(), Some(client))
            .await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(&user)),
            tokens: tokens.map(pair_to_proto),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn login(&self, request: Request<pb::LoginRequest>) -> Answer<pb::LoginResponse> {
        let request = request.into_inner();
        let client = client_info(request.client.as_ref())?;
        let (user, tokens) = self
            .state
            .login(&request.username, request.password, client)
            .await?;
        tracing::info!(user_id = %user.id, session_id = %tokens.session_id, "logged in");
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(pair_to_proto(tokens)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Answer<pb::RefreshResponse> {
        let request = request.into_inner();
        let client = client_info(request.client.as_ref())?;
        let tokens = self.state.refresh(&request.refresh_token, client).await?;
        Ok(Response::new(pb::RefreshResponse {
            tokens: Some(pair_to_proto(tokens)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Answer<pb::LogoutResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        self.state.logout(&caller).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn logout_all(
        &self,
        request: Request<pb::LogoutAllRequest>,
    ) -> Answer<pb::LogoutAllResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let revoked = self.state.logout_all(&caller).await?;
        Ok(Response::new(pb::LogoutAllResponse {
            sessions_revoked: count(revoked),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Answer<pb::ListSessionsResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let sessions = self
            .state
            .list_sessions(&caller, request.get_ref().include_revoked)
            .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions
                .iter()
                .map(|session| session_to_proto(session, &caller.session_id))
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Answer<pb::RevokeSessionsResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let revoked = self
            .state
            .revoke_sessions(&caller, request.into_inner().session_ids)
            .await?;
        Ok(Response::new(pb::RevokeSessionsResponse {
            revoked: count(revoked),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Answer<pb::GetJwksResponse> {
        let keys = self
            .state
            .tokens
            .keys()
            .published()
            .iter()
            .map(jwk_to_proto)
            .collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }

    #[tracing::instrument(skip_all)]
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Answer<pb::ValidateTokenResponse> {
        let verdict = self.state.validate_token(&request.get_ref().token).await?;
        Ok(Response::new(match verdict {
            Ok(claims) => pb::ValidateTokenResponse {
                valid: true,
                rejection: pb::TokenRejection::Unspecified.into(),
                claims: Some(claims_to_proto(&claims)),
            },
            Err(rejection) => pb::ValidateTokenResponse {
                valid: false,
                rejection: rejection_to_proto(rejection).into(),
                claims: None,
            },
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Answer<pb::User> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let user = self
            .state
            .get_user(&caller, &request.get_ref().user_id)
            .await?;
        Ok(Response::new(user_to_proto(&user)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let pb::ListUsersRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let (users, next) = self
            .state
            .list_users(&caller, page_size, &page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(user_to_proto).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Answer<pb::User> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let request = request.into_inner();
        let update = AccountUpdate {
            is_active: request.is_active,
            roles: request.roles.map(|list| list.roles),
        };
        let user = self
            .state
            .update_user(&caller, &request.user_id, update)
            .await?;
        Ok(Response::new(user_to_proto(&user)))
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Answer<pb::ChangePasswordResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let request = request.into_inner();
        let revoked = self
            .state
            .change_password(&caller, request.current_password, request.new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            sessions_revoked: count(revoked),
        }))
    }
}

fn client_info(client: Option<&pb::ClientInfo>) -> Result<ClientInfo, AuthError> {
    let (user_agent, ip) = client.map_or(("", ""), |c| (c.user_agent.as_str(), c.ip.as_str()));
    ClientInfo::parse(user_agent, ip)
        .map_err(|(field, message)| AuthError::from(FieldErrors::single(field, message)))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn unix_timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn unix_timestamp_ms(ms: i64) -> prost_types::Timestamp {
    let nanos = i32::try_from(ms.rem_euclid(1_000) * 1_000_000).unwrap_or(0);
    prost_types::Timestamp {
        seconds: ms.div_euclid(1_000),
        nanos,
    }
}

fn user_to_proto(user: &User) -> pb::User {
    pb::User {
        id: user.id.clone(),
        username: user.username.clone(),
        email: user.email.clone(),
        roles: Roles::from_stored(&user.roles).names(),
        is_active: user.is_active,
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
    }
}

fn pair_to_proto(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
        session_id: pair.session_id,
    }
}

fn session_to_proto(session: &Session, current_session_id: &str) -> pb::Session {
    pb::Session {
        id: session.id.clone(),
        created_at: Some(timestamp(session.created_at)),
        last_used_at: Some(timestamp(session.last_used_at)),
        expires_at: Some(timestamp(session.expires_at)),
        user_agent: session.user_agent.clone(),
        ip: session.ip.clone(),
        current: session.id == current_session_id,
        revoked_at: session.revoked_at.map(timestamp),
        revoked_reason: session.revoked_reason.clone().unwrap_or_default(),
    }
}

fn claims_to_proto(claims: &Claims) -> pb::TokenClaims {
    pb::TokenClaims {
        user_id: claims.sub.clone(),
        session_id: claims.sid.clone(),
        token_id: claims.jti.clone(),
        roles: claims.roles.clone(),
        issued_at: Some(unix_timestamp_ms(claims.issued_at_ms)),
        expires_at: Some(unix_timestamp(claims.exp)),
    }
}

fn rejection_to_proto(rejection: Rejection) -> pb::TokenRejection {
    match rejection {
        Rejection::Malformed => pb::TokenRejection::Malformed,
        Rejection::BadSignature => pb::TokenRejection::BadSignature,
        Rejection::Expired => pb::TokenRejection::Expired,
        Rejection::NotYetValid => pb::TokenRejection::NotYetValid,
        Rejection::WrongAudience => pb::TokenRejection::WrongAudience,
        Rejection::WrongType => pb::TokenRejection::WrongType,
        Rejection::Revoked => pb::TokenRejection::Revoked,
    }
}
