//! The BooksService RPCs: authenticate, convert the request, call one operation of
//! [`AppState`], convert the answer. Nothing else happens here.

use std::sync::Arc;

use grpc_conventions::timestamp;
use proto::books::v1 as pb;
use proto::books::v1::books_service_server::BooksService;
use tonic::{Request, Response, Status};

use crate::books::ListRequest;
use crate::db::books::Book;
use crate::domain::FieldInput;
use crate::state::AppState;

pub struct BooksApi {
    state: Arc<AppState>,
}

impl BooksApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl BooksService for BooksApi {
    #[tracing::instrument(skip_all)]
    async fn create_book(&self, request: Request<pb::CreateBookRequest>) -> Answer<pb::Book> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let input = field_input(request.into_inner().book.unwrap_or_default());
        let book = self.state.create_book(&caller, input).await?;
        tracing::info!(book_id = %book.id, user_id = %caller.user_id, "book created");
        Ok(Response::new(book_to_proto(book)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_book(&self, request: Request<pb::GetBookRequest>) -> Answer<pb::Book> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let book = self.state.get_book(&caller, &request.get_ref().id).await?;
        Ok(Response::new(book_to_proto(book)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_books(
        &self,
        request: Request<pb::ListBooksRequest>,
    ) -> Answer<pb::ListBooksResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let request = request.get_ref();
        let listing = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            query: &request.query,
            author: &request.author,
        };
        let page = self.state.list_books(&caller, request.all, listing).await?;
        Ok(Response::new(pb::ListBooksResponse {
            books: page.books.into_iter().map(book_to_proto).collect(),
            next_page_token: page.next.map(|token| token.encode()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_book(&self, request: Request<pb::UpdateBookRequest>) -> Answer<pb::Book> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let request = request.into_inner();
        let book = request.book.unwrap_or_default();
        let id = book.id.clone();
        let mask = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let updated = self
            .state
            .update_book(
                &caller,
                &id,
                field_input(book),
                &mask,
                request.expected_version,
            )
            .await?;
        Ok(Response::new(book_to_proto(updated)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_book(
        &self,
        request: Request<pb::DeleteBookRequest>,
    ) -> Answer<pb::DeleteBookResponse> {
        let caller = self.state.authenticate(request.metadata()).await?;
        let request = request.get_ref();
        self.state
            .delete_book(&caller, &request.id, request.expected_version)
            .await?;
        Ok(Response::new(pb::DeleteBookResponse {}))
    }
}

fn field_input(book: pb::Book) -> FieldInput {
    FieldInput {
        title: book.title,
        author: book.author,
        publisher: book.publisher,
        isbn: book.isbn,
        price_cents: book.price_cents,
        published_year: book.published_year,
    }
}

fn book_to_proto(book: Book) -> pb::Book {
    pb::Book {
        id: book.id,
        owner_id: book.owner_id,
        title: book.title,
        author: book.author,
        publisher: book.publisher,
        isbn: book.isbn,
        price_cents: book.price_cents,
        published_year: book.published_year,
        version: book.version,
        created_at: Some(timestamp(book.created_at)),
        updated_at: Some(timestamp(book.updated_at)),
    }
}
