use proto::books::v1 as pb;
use test_support::both_backends;
use tonic::Code;

use crate::helpers::{book, spawn_app};

fn invalid_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    grpc_conventions::field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

both_backends! {
    async fn each_field_rule_is_enforced_and_named(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("strict").await;
        let long = "x".repeat(301);
        let year_after_next = chrono::Datelike::year(&chrono::Utc::now()) + 2;
        let cases: Vec<(pb::Book, &[&str])> = vec![
            (book("", "Author"), &["title"]),
            (book("   ", "Author"), &["title"]),
            (book("Title", ""), &["author"]),
            (book(&long, &long), &["title", "author"]),
            (book("Title\u{0}", "Author"), &["title"]),
            (pb::Book { publisher: Some(long.clone()), ..book("T", "A") }, &["publisher"]),
            (pb::Book { isbn: Some("0-306-40615-3".to_owned()), ..book("T", "A") }, &["isbn"]),
            (pb::Book { isbn: Some("not an isbn".to_owned()), ..book("T", "A") }, &["isbn"]),
            (pb::Book { price_cents: -1, ..book("T", "A") }, &["price_cents"]),
            (pb::Book { price_cents: i64::MAX, ..book("T", "A") }, &["price_cents"]),
            (pb::Book { published_year: Some(1449), ..book("T", "A") }, &["published_year"]),
            (pb::Book { published_year: Some(year_after_next), ..book("T", "A") }, &["published_year"]),
        ];

        for (input, fields) in cases {
            let status = app.create(&user, input.clone()).await.unwrap_err();
            assert_eq!(invalid_fields(&status), fields, "{input:?}");
        }
        let listed = app.list(&user, pb::ListBooksRequest::default()).await.unwrap();
        assert!(listed.books.is_empty(), "nothing invalid was stored");
    }

    async fn a_300_character_title_and_both_isbn_forms_are_accepted(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("lenient").await;
        let title = "é".repeat(300);

        let ten = app.create(&user, pb::Book { isbn: Some("0-306-40615-2".to_owned()), ..book(&title, "A") }).await.unwrap();
        let thirteen = app.create(&user, pb::Book { isbn: Some("979-10-90636-07-1".to_owned()), ..book("T", "A") }).await.unwrap();

        assert_eq!(ten.isbn.as_deref(), Some("9780306406157"));
        assert_eq!(thirteen.isbn.as_deref(), Some("9791090636071"));
        assert_eq!(ten.title, title);
    }

    async fn bad_ids_masks_and_updates_are_invalid_argument(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("sloppy").await;
        let created = app.create(&user, book("T", "A")).await.unwrap();

        assert_eq!(invalid_fields(&app.get(&user, "not-a-uuid").await.unwrap_err()), ["id"]);
        assert_eq!(invalid_fields(&app.delete(&user, "1; DROP TABLE books", 0).await.unwrap_err()), ["id"]);
        let bad_mask = app.update(&user, pb::Book { id: created.id.clone(), ..book("T", "A") }, &["owner_id"], 0).await.unwrap_err();
        assert_eq!(invalid_fields(&bad_mask), ["update_mask"]);
        let cleared_title = app.update(&user, pb::Book { id: created.id.clone(), ..pb::Book::default() }, &["title"], 0).await.unwrap_err();
        assert_eq!(invalid_fields(&cleared_title), ["title"]);
        assert_eq!(app.get(&user, &created.id).await.unwrap(), created);
    }
}
